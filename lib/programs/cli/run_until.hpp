// A bounded run of an io_context, shared by `portres selftest` and the test
// suite (which includes lib/programs): nothing there waits without a bound.
#ifndef PORTRES_PROGRAMS_CLI_RUN_UNTIL_HPP
#define PORTRES_PROGRAMS_CLI_RUN_UNTIL_HPP

#include <asio/io_context.hpp>

#include <chrono>

namespace cli {

/// Runs `io` until `done()` or `limit` passes; returns done(). Runs in
/// 10 ms slices so that `done()` is asked again while handlers keep coming.
template <class Predicate>
bool run_until(asio::io_context& io, Predicate done, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  io.restart();
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    io.run_for(std::chrono::milliseconds(10));
    io.restart();
  }
  return done();
}

} // namespace cli

#endif
