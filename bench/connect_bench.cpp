// Case 2, connect latency against occupancy: kernel autobind vs a pooled,
// pre-bound socket. Case 5, churn with the client closing first (TIME_WAIT
// on the client): kernel autobind in a range narrowed to B ports vs a pool
// over a block of B ports with the LRU policy.
#include "bench_support.hpp"

#include "portres/portres.hpp"

#include <asio/io_context.hpp>
#include <asio/socket_base.hpp>

#include <thread>

namespace {

using namespace portres_bench;
using tcp = asio::ip::tcp;

// Closing with SO_LINGER 0 sends RST: no TIME_WAIT, so the occupancy stays
// what the case set up.
void abort_close(tcp::socket& s) {
  std::error_code ec;
  s.set_option(asio::socket_base::linger(true, 0), ec);
  s.close(ec);
}

void connect_latency(benchmark::State& state, bool pooled, pattern layout) {
  prepare_environment();
  const int percent = static_cast<int>(state.range(0));
  occupancy occupied(percent, layout);
  sink_server server;
  asio::io_context io;
  auto busy = asio::make_work_guard(io); // io.poll() keeps working between iterations
  portres::runtime_reservation block;
  std::unique_ptr<portres::socket_pool<tcp>> pool;
  if (pooled) {
    block = portres::acquire(io.get_executor(), portres::protocol::tcp, portres::port_range::wildcard(512));
    portres::socket_pool<tcp>::options o;
    o.low_water = 16;
    o.high_water = 64;
    pool = std::make_unique<portres::socket_pool<tcp>>(io.get_executor(), block, asio::ip::address_v4::loopback(), o);
    while (pool->stats().ready < 64) io.run_one_for(std::chrono::milliseconds(100));
  }
  latencies lat;
  std::uint64_t failures = 0;
  for (auto _ : state) {
    std::error_code ec;
    tcp::socket plain(io);
    portres::pooled_socket<tcp> from_pool;
    if (!pooled) plain.open(tcp::v4());
    const auto start = clock_type::now();
    if (pooled) {
      from_pool = pool->try_get(ec);
      if (!ec) from_pool->connect(server.endpoint(), ec);
    } else {
      plain.connect(server.endpoint(), ec);
    }
    const auto stop = clock_type::now();
    if (ec) ++failures;
    lat.add(stop - start);
    state.SetIterationTime(std::chrono::duration<double>(stop - start).count());
    if (pooled) {
      if (from_pool) abort_close(from_pool.socket());
      from_pool = {};
      io.poll(); // background refill, off the measured path
    } else {
      abort_close(plain);
    }
  }
  lat.report(state);
  state.counters["occupancy_pct"] = percent;
  state.counters["failures"] = static_cast<double>(failures);
}

// Client closes first: each connection leaves TIME_WAIT on the client port.
// Both methods get the same budget of B ports and the same pace, 90 % of
// B per reuse interval (tcp_tw_reuse lets a TIME_WAIT port be reused for a
// new connection after 1 s, on loopback by default).
constexpr std::uint32_t budget = 1000;
constexpr double reuse_interval_s = 1.0;
constexpr double paced_rate = 0.9 * budget / reuse_interval_s;
constexpr auto run_time = std::chrono::seconds(3);

void churn(benchmark::State& state, bool pooled, bool paced) {
  const auto& env = prepare_environment();
  if (!env.private_netns) {
    state.SkipWithError("churn needs root for a private network namespace (narrowed ip_local_port_range)");
    return;
  }
  sink_server server;
  asio::io_context io;
  auto busy = asio::make_work_guard(io);
  set_ephemeral_range({40000, static_cast<std::uint16_t>(40000 + budget - 1)});
  const auto old_reuse = read_sysctl("/proc/sys/net/ipv4/tcp_tw_reuse");
  write_sysctl("/proc/sys/net/ipv4/tcp_tw_reuse", "1");
  portres::runtime_reservation block;
  std::unique_ptr<portres::socket_pool<tcp>> pool;
  if (pooled) {
    // A wildcard block: earlier runs leave their ports in TIME_WAIT for 60 s,
    // and placement skips ports the kernel reports as held.
    std::error_code ec;
    block = portres::acquire(io.get_executor(), portres::protocol::tcp, portres::port_range::wildcard(budget), ec);
    if (ec) {
      state.SkipWithError(("acquire failed: " + ec.message()).c_str());
      return;
    }
    portres::socket_pool<tcp>::options o;
    o.low_water = 8;
    o.high_water = 32;
    o.policy = portres::port_policy::lru;
    // SO_REUSEADDR lets a rested TIME_WAIT port be bound again; connect then
    // applies the kernel's tcp_tw_reuse rule.
    o.configure = [](tcp::socket& s, std::error_code& e) { s.set_option(asio::socket_base::reuse_address(true), e); };
    pool = std::make_unique<portres::socket_pool<tcp>>(io.get_executor(), block, asio::ip::address_v4::loopback(), o);
    while (pool->stats().ready < 32) io.run_one_for(std::chrono::milliseconds(100));
  }
  std::uint64_t connects = 0, failures = 0;
  double seconds = 0;
  latencies lat;
  for (auto _ : state) {
    const auto begin = clock_type::now();
    const auto interval = std::chrono::duration<double>(1.0 / paced_rate);
    std::uint64_t n = 0;
    while (clock_type::now() - begin < run_time) {
      const auto due = begin + std::chrono::duration_cast<clock_type::duration>(interval * static_cast<double>(n));
      while (paced && clock_type::now() < due) {
        if (pooled) io.poll();
      }
      if (pooled) io.poll();
      ++n;
      std::error_code ec;
      tcp::socket plain(io);
      portres::pooled_socket<tcp> from_pool;
      if (pooled) {
        from_pool = pool->try_get(ec);
        while (ec == std::errc::operation_would_block && clock_type::now() - begin < run_time) {
          io.run_one_for(std::chrono::milliseconds(1));
          from_pool = pool->try_get(ec);
        }
      } else {
        plain.open(tcp::v4());
      }
      const auto start = clock_type::now();
      if (!ec) {
        if (pooled) {
          from_pool->connect(server.endpoint(), ec);
        } else {
          plain.connect(server.endpoint(), ec);
        }
      }
      lat.add(clock_type::now() - start);
      if (ec) {
        ++failures;
      } else {
        ++connects;
      }
      // Client closes first (FIN): TIME_WAIT stays with the client's port.
      from_pool = {};
      plain.close(ec);
    }
    seconds += std::chrono::duration<double>(clock_type::now() - begin).count();
    state.SetIterationTime(std::chrono::duration<double>(clock_type::now() - begin).count());
  }
  lat.report(state);
  state.counters["connects_per_s"] = static_cast<double>(connects) / seconds;
  if (paced) state.counters["target_per_s"] = paced_rate;
  state.counters["failures"] = static_cast<double>(failures);
  state.counters["budget_ports"] = budget;
  write_sysctl("/proc/sys/net/ipv4/tcp_tw_reuse", old_reuse);
  set_ephemeral_range(env.ephemeral);
  // TIME_WAIT sockets of this case stay behind; later cases use other ports.
}

void register_all() {
  for (const bool pooled : {false, true}) {
    for (const auto layout : {pattern::random, pattern::clustered}) {
      const std::string name = std::string("connect/") + (pooled ? "pooled" : "autobind") +
                               (layout == pattern::random ? "/random" : "/clustered");
      auto* b = benchmark::RegisterBenchmark(name.c_str(), [pooled, layout](benchmark::State& s) { connect_latency(s, pooled, layout); });
      b->ArgName("occupancy")->UseManualTime()->Unit(benchmark::kMicrosecond);
      for (const auto level : occupancy_levels) b->Arg(level);
    }
  }
  for (const bool paced : {true, false}) {
    for (const bool pooled : {false, true}) {
      const std::string name =
          std::string("churn/") + (pooled ? "portres_lru" : "autobind") + (paced ? "/paced" : "/flat_out");
      benchmark::RegisterBenchmark(name.c_str(), [pooled, paced](benchmark::State& s) { churn(s, pooled, paced); })
          ->Iterations(1)
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
}

const bool registered = (register_all(), true);

} // namespace
