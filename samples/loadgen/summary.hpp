// loadgen's output: the progress line (one a second) and the final summary,
// as text or one JSON object.
#ifndef PORTRES_SAMPLES_LOADGEN_SUMMARY_HPP
#define PORTRES_SAMPLES_LOADGEN_SUMMARY_HPP

#include "loadgen/lane.hpp"

namespace loadgen {

/// One second's line: rate (churn) or held and opened (hold), errors so far, connect p99.
void print_progress(const settings& s, int second, const counts& interval);

/// The summary of the whole run (`begin`: when it started).
void print_summary(const settings& s, const counts& total, double seconds, clock_type::time_point begin);

} // namespace loadgen

#endif
