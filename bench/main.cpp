// The benchmark runner: prepares the environment (private namespace where
// root allows) before Google Benchmark runs the registered cases.
#include "bench_support.hpp"

int main(int argc, char** argv) {
  portres_bench::prepare_environment();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
