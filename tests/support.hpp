// Shared test helpers: readable doctest output for error codes, bounded
// io_context runs, and the list of backends a conformance test runs against.
#ifndef PORTRES_TESTS_SUPPORT_HPP
#define PORTRES_TESTS_SUPPORT_HPP

#include <doctest/doctest.h>

#include <asio/io_context.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <string>
#include <system_error>

#if !defined(_WIN32)
#include <sys/resource.h>
#endif

namespace doctest {
template <>
struct StringMaker<std::error_code> {
  static String convert(const std::error_code& ec) {
    const std::string text =
        std::string(ec.category().name()) + ":" + std::to_string(ec.value()) + " (" + ec.message() + ")";
    return String(text.c_str());
  }
};
} // namespace doctest

/// Ends the current test case as skipped, visibly: ctest reports it as
/// "Skipped" (SKIP_REGULAR_EXPRESSION) and scripts/test lists the reasons.
#define PORTRES_SKIP(reason)                                                                             \
  do {                                                                                                   \
    std::printf("SKIPPED: %s\n", reason);                                                                \
    std::fflush(stdout);                                                                                 \
    return;                                                                                              \
  } while (false)

namespace portres_test {

/// True when the test process runs in its own network namespace (root on Linux).
bool in_private_netns();
/// A per-process scratch folder, removed at exit.
const std::filesystem::path& scratch_dir();

/// The first line of a sysctl (or any small file); empty when unreadable.
inline std::string read_sysctl(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

/// Writes a sysctl: only ever inside a test's private network namespace.
inline void write_sysctl(const char* path, const std::string& value) {
  std::ofstream out(path);
  out << value << '\n';
}

/// Raises the soft limit on open descriptors to at least `needed` (within
/// the hard limit); false when it cannot. Windows has no such limit.
inline bool ensure_descriptors([[maybe_unused]] std::size_t needed) {
#if defined(_WIN32)
  return true;
#else
  rlimit l{};
  if (::getrlimit(RLIMIT_NOFILE, &l) != 0) return false;
  if (l.rlim_cur >= needed) return true;
  if (l.rlim_max < needed) return false;
  l.rlim_cur = needed;
  return ::setrlimit(RLIMIT_NOFILE, &l) == 0;
#endif
}

/// Runs `io` until `done()` or `limit` passes; returns done().
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

} // namespace portres_test

#endif
