// `portres selftest [--json]`: the conformance sequence against the real OS.
#ifndef PORTRES_SAMPLES_SELFTEST_HPP
#define PORTRES_SAMPLES_SELFTEST_HPP

namespace samples {

/// Runs every check, prints one line per check (or one JSON report), and
/// returns 0 when no check failed, 1 otherwise.
int selftest(bool json);

} // namespace samples

#endif
