// Shared test helpers: readable doctest output for error codes, bounded
// io_context runs, and the list of backends a conformance test runs against.
#ifndef PORTRES_TESTS_SUPPORT_HPP
#define PORTRES_TESTS_SUPPORT_HPP

#include <doctest/doctest.h>

#include "cli/run_until.hpp"

#include <asio/io_context.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
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

/// `full` divided by PORTRES_RACE_SCALE (a divisor, default 1): the
/// sanitizer suites run the long races and floods smaller.
inline int race_scaled(int full) {
  const char* s = std::getenv("PORTRES_RACE_SCALE");
  const int v = s ? std::atoi(s) : 1;
  return full / (v > 0 ? v : 1);
}

/// The first line of a sysctl (or any small file); empty when unreadable.
/// One read from offset 0 with room for any sysctl: a /proc/sys file longer
/// than a page (ip_local_reserved_ports) reads as empty at any other offset.
inline std::string read_sysctl(const char* path) {
  std::ifstream in(path);
  std::string text(1 << 20, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  return text.substr(0, text.find('\n'));
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

/// Runs `io` until `done()` or `limit` (10 s by default) passes; returns done().
using cli::run_until;

} // namespace portres_test

#endif
