// The test process' watchdog (test_watchdog.cpp).
#ifndef PORTRES_TESTS_TEST_WATCHDOG_HPP
#define PORTRES_TESTS_TEST_WATCHDOG_HPP

namespace portres_test {

/// Starts the watchdog thread: a test case (or the exit after the last one)
/// running past PORTRES_TEST_TIMEOUT seconds (default 1200, 0 = off) is
/// named on stderr and the process ends with exit code 124.
void start_watchdog();

} // namespace portres_test

#endif
