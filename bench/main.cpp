// The benchmark runner: prepares the environment (private namespace where
// root allows) before Google Benchmark runs the registered cases. Two extra
// modes serve scripts/bench: --syscalls=CLIENT --count=N (a fixed-count
// connect run for strace) and --hold-reservations=N (a child of the acquire
// cases). --churn_seconds=S sets the length of each churn run;
// --bind_iterations=N fixes the binds per repetition of the bind/* and own/*
// cases (default 0: Google Benchmark calibrates the count, rerunning each
// case's setup for every count it tries).
// --registry=per_user|broker picks the registry mode of the run (default
// per_user, PORTRES_BROKER=off); broker starts --portresd=PATH inside the
// private namespace. The acquire cases carry the mode in their names.
// A value that is not wholly a number in range, an empty one, or a flag
// neither this nor Google Benchmark knows: a message and exit status 2.
#include "bench_support.hpp"
#include "clients.hpp"
#include "cli/options.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

// Reads the value of `arg` (after `flag`, "--name=") into `out` when the
// whole of it is a number in [low, high]; else says so and returns false (exit
// 2): a typo must not become a zero-length or endless run. NaN fails the test.
template <class T>
bool read_value(const std::string& arg, const char* flag, T low, T high, const char* what, T& out) {
  const std::string text = arg.substr(std::strlen(flag));
  const auto value = cli::checked_number(text, low, high);
  if (!value) {
    std::fprintf(stderr, "%.*s takes %s, not '%s'\n", static_cast<int>(std::strlen(flag) - 1), flag, what, text.c_str());
    return false;
  }
  out = *value;
  return true;
}

} // namespace

int main(int argc, char** argv) {
  std::string syscalls;
  std::uint32_t count = 2000;
  std::int64_t bind_iterations = 0;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto is = [&a](const char* flag) { return a.rfind(flag, 0) == 0; };
    bool ok = true;
    if (is("--hold-reservations=")) {
      std::uint32_t held = 0;
      if (!read_value<std::uint32_t>(a, "--hold-reservations=", 0, 1'000'000, "a count from 0 to 1000000", held)) return 2;
      return portres_bench::hold_reservations_main(held);
    }
    if (is("--syscalls=")) {
      syscalls = a.substr(11);
      if (syscalls.empty()) std::fprintf(stderr, "--syscalls takes autobind, explicit or pool, not ''\n");
      ok = !syscalls.empty();
    } else if (is("--count=")) {
      ok = read_value<std::uint32_t>(a, "--count=", 1, 10'000'000, "a count from 1 to 10000000", count);
    } else if (is("--bind_iterations=")) {
      ok = read_value<std::int64_t>(a, "--bind_iterations=", 0, 10'000'000, "a count from 0 (calibrate) to 10000000",
                                    bind_iterations);
    } else if (is("--churn_seconds=")) {
      ok = read_value<double>(a, "--churn_seconds=", 0.001, 3600, "seconds from 0.001 to 3600", portres_bench::churn_seconds);
    } else if (is("--registry=")) {
      portres_bench::requested_registry().mode = a.substr(11);
    } else if (is("--portresd=")) {
      portres_bench::requested_registry().portresd_path = a.substr(11);
    } else {
      argv[kept++] = argv[i];
    }
    if (!ok) return 2;
  }
  argc = kept;
  const auto mode = portres_bench::requested_registry().mode;
  if (mode != "per_user" && mode != "broker") {
    std::fprintf(stderr, "--registry must be per_user or broker, not '%s'\n", mode.c_str());
    return 2;
  }
  if (!syscalls.empty()) return portres_bench::syscalls_main(syscalls, count);
  portres_bench::prepare_environment();
  portres_bench::register_bind_cases(bind_iterations);
  portres_bench::register_connect_cases();
  portres_bench::register_acquire_cases(mode);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2; // a typo'd flag is bad input too
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
