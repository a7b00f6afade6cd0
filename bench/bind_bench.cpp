// Case 1, bind latency against occupancy of the ephemeral range:
//   raw bind() to an explicit free port (the floor), raw bind() to port 0 (the
//   kernel's search), and portres::bind from a reservation.
#include "bench_support.hpp"

#include "portres/portres.hpp"

#include <asio/io_context.hpp>

namespace {

using namespace portres_bench;

constexpr std::uint16_t floor_first = 20000; // below the ephemeral range: always free
constexpr std::uint16_t floor_count = 5000;

enum class method { explicit_port, ephemeral, portres_bind };

void bind_latency(benchmark::State& state, method how, pattern layout) {
  prepare_environment();
  const int percent = static_cast<int>(state.range(0));
  occupancy occupied(percent, layout);
  asio::io_context io;
  const auto loopback = asio::ip::address_v4::loopback();
  portres::runtime_reservation block;
  if (how == method::portres_bind) {
    block = portres::acquire(io.get_executor(), portres::protocol::tcp, portres::port_range::wildcard(1024));
  }
  latencies lat;
  std::uint64_t i = 0, failures = 0;
  for (auto _ : state) {
    asio::ip::tcp::socket socket(io, asio::ip::tcp::v4());
    std::error_code ec;
    if (how == method::portres_bind) portres::associate(socket, block.token(), ec);
    const auto start = clock_type::now();
    switch (how) {
    case method::explicit_port:
      socket.bind({loopback, static_cast<std::uint16_t>(floor_first + i % floor_count)}, ec);
      break;
    case method::ephemeral: socket.bind({loopback, 0}, ec); break;
    case method::portres_bind: portres::bind(socket, loopback, ec); break;
    }
    const auto stop = clock_type::now();
    ++i;
    if (ec) ++failures;
    lat.add(stop - start);
    state.SetIterationTime(std::chrono::duration<double>(stop - start).count());
  }
  lat.report(state);
  state.counters["occupancy_pct"] = percent;
  state.counters["occupied_ports"] = static_cast<double>(occupied.held());
  state.counters["failures"] = static_cast<double>(failures);
}

void register_all() {
  struct variant {
    const char* name;
    method how;
  };
  for (const auto v : {variant{"explicit", method::explicit_port}, variant{"ephemeral", method::ephemeral},
                       variant{"portres", method::portres_bind}}) {
    for (const auto layout : {pattern::random, pattern::clustered}) {
      const std::string name = std::string("bind/") + v.name + (layout == pattern::random ? "/random" : "/clustered");
      auto* b = benchmark::RegisterBenchmark(name.c_str(), [v, layout](benchmark::State& s) { bind_latency(s, v.how, layout); });
      b->ArgName("occupancy")->UseManualTime()->Unit(benchmark::kMicrosecond);
      for (const auto level : occupancy_levels) b->Arg(level);
    }
  }
}

const bool registered = (register_all(), true);

} // namespace
