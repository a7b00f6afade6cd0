// `portres selftest [--json]`: the conformance sequence against the real OS.
#ifndef PORTRES_PROGRAMS_PORTRES_SELFTEST_HPP
#define PORTRES_PROGRAMS_PORTRES_SELFTEST_HPP

namespace cli {

/// Runs every check, prints one line per check as it completes (or one JSON
/// report at the end, with a progress line per check on stderr), and
/// returns 0 when no check failed, 1 otherwise.
int selftest(bool json);

} // namespace cli

#endif
