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
#include "bench_support.hpp"
#include "clients.hpp"

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  std::string syscalls;
  std::uint32_t count = 2000;
  std::int64_t bind_iterations = 0;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--hold-reservations=", 0) == 0) {
      return portres_bench::hold_reservations_main(static_cast<std::uint32_t>(std::strtoul(a.c_str() + 20, nullptr, 10)));
    }
    if (a.rfind("--syscalls=", 0) == 0) syscalls = a.substr(11);
    else if (a.rfind("--count=", 0) == 0) count = static_cast<std::uint32_t>(std::strtoul(a.c_str() + 8, nullptr, 10));
    else if (a.rfind("--bind_iterations=", 0) == 0) {
      const auto text = a.substr(18);
      const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), bind_iterations);
      if (err != std::errc{} || end != text.data() + text.size() || bind_iterations < 0 || bind_iterations > 10'000'000) {
        std::fprintf(stderr, "--bind_iterations takes a count from 0 (calibrate) to 10000000, not '%s'\n", text.c_str());
        return 2;
      }
    }
    else if (a.rfind("--churn_seconds=", 0) == 0) portres_bench::churn_seconds = std::strtod(a.c_str() + 16, nullptr);
    else if (a.rfind("--registry=", 0) == 0) portres_bench::requested_registry().mode = a.substr(11);
    else if (a.rfind("--portresd=", 0) == 0) portres_bench::requested_registry().portresd_path = a.substr(11);
    else argv[kept++] = argv[i];
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
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
