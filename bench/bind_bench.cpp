// bind() latency: an explicit, known-free port (the floor) against port 0
// (the kernel's ephemeral search), in the same run.
#include <benchmark/benchmark.h>

#include <asio/ip/tcp.hpp>
#include <asio/io_context.hpp>

#include <chrono>
#include <cstdint>

namespace {

using clock_type = std::chrono::steady_clock;

// Ports below the default ephemeral range (32768-60999), cycled so that each
// bind targets a port nobody holds: an unconnected socket frees its port at close.
constexpr std::uint16_t explicit_first = 20000;
constexpr std::uint16_t explicit_count = 10000;

// Times only the bind call: socket creation and close are outside the measurement.
template <class PortFor>
void bind_loop(benchmark::State& state, PortFor port_for) {
  asio::io_context io;
  std::uint64_t i = 0;
  std::uint64_t failures = 0;
  for (auto _ : state) {
    asio::ip::tcp::socket socket(io, asio::ip::tcp::v4());
    const asio::ip::tcp::endpoint local(asio::ip::address_v4::loopback(), port_for(i++));
    std::error_code ec;
    const auto start = clock_type::now();
    socket.bind(local, ec);
    const auto stop = clock_type::now();
    if (ec) ++failures;
    state.SetIterationTime(std::chrono::duration<double>(stop - start).count());
  }
  state.counters["bind_failures"] = static_cast<double>(failures);
  if (failures != 0) state.SkipWithError("bind failed");
}

void BM_bind_explicit(benchmark::State& state) {
  bind_loop(state, [](std::uint64_t i) {
    return static_cast<std::uint16_t>(explicit_first + i % explicit_count);
  });
}

void BM_bind_ephemeral(benchmark::State& state) {
  bind_loop(state, [](std::uint64_t) { return std::uint16_t{0}; });
}

} // namespace

BENCHMARK(BM_bind_explicit)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_bind_ephemeral)->UseManualTime()->Unit(benchmark::kMicrosecond);
