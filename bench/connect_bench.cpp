// Connect cost per connection and churn, for the three clients of clients.hpp.
//
// connect/<client>/occupancy:N  the timed region is one whole connection as
//   its user pays for it: socket creation (autobind), socket + SO_REUSEADDR +
//   bind (explicit), pool get (pool); connect; abortive close; and for the pool
//   the refill work it queued (io.poll()). use_* counters: start until
//   connected. cpu_us_per_conn: CPU time of the whole client process (every
//   thread, the library's blocking pool included; the server is another
//   process) per connection.
// churn/<client>: client closes first (TIME_WAIT on the client's port), a
//   budget of 1,000 ports, default sysctls, flat out for a fixed time.
#include "clients.hpp"

namespace portres_bench {
double churn_seconds = 10;
}

namespace {

using namespace portres_bench;

void connect_cost(benchmark::State& state, client_kind kind) {
  prepare_environment();
  const int percent = static_cast<int>(state.range(0));
  occupancy occupied(percent, pattern::random);
  sink_server server;
  asio::io_context io;
  auto busy = asio::make_work_guard(io);
  client_options o;
  o.kind = kind;
  std::error_code ec;
  client c(io, o, ec);
  if (ec) {
    state.SkipWithError(("client setup failed: " + ec.message()).c_str());
    return;
  }
  latencies whole, use;
  failure_counts failures;
  std::uint64_t n = 0;
  const double cpu_before = process_cpu_seconds();
  for (auto _ : state) {
    clock_type::duration until_connected{};
    const auto start = clock_type::now();
    const auto e = c.connect_once(server.endpoint(), until_connected);
    const auto stop = clock_type::now();
    if (e) failures.add(e);
    ++n;
    whole.add_timed(state, stop - start);
    use.add(until_connected);
  }
  const double cpu = process_cpu_seconds() - cpu_before;
  whole.report(state);
  use.report(state, "use_");
  failures.report(state);
  state.counters["cpu_us_per_conn"] = n ? cpu * 1e6 / static_cast<double>(n) : 0.0;
  state.counters["occupancy_pct"] = percent;
}

constexpr std::uint32_t budget = 1000;

void churn(benchmark::State& state, client_kind kind, portres::port_policy policy) {
  const auto& env = prepare_environment();
  if (!env.private_netns) {
    state.SkipWithError("churn needs root for a private network namespace (narrowed ip_local_port_range)");
    return;
  }
  // The kernel's defaults, set explicitly: tw_reuse 2 (loopback only), timestamps on.
  write_sysctl("/proc/sys/net/ipv4/tcp_tw_reuse", "2");
  write_sysctl("/proc/sys/net/ipv4/tcp_timestamps", "1");
  sink_server server; // listens outside the budget below
  set_ephemeral_range({40000, static_cast<std::uint16_t>(40000 + budget - 1)});
  asio::io_context io;
  auto busy = asio::make_work_guard(io);
  client_options o;
  o.kind = kind;
  o.close = close_kind::fin;
  o.explicit_ports = {41000, static_cast<std::uint16_t>(41000 + budget - 1)};
  o.policy = policy;
  o.block = budget;
  o.low_water = 8;
  o.high_water = 32;
  std::error_code ec;
  client c(io, o, ec);
  if (ec) {
    set_ephemeral_range(env.ephemeral);
    state.SkipWithError(("client setup failed: " + ec.message()).c_str());
    return;
  }
  std::uint64_t connects = 0;
  failure_counts failures;
  latencies use;
  double seconds = 0;
  for (auto _ : state) {
    const auto begin = clock_type::now();
    const auto run_time = std::chrono::duration<double>(churn_seconds);
    while (clock_type::now() - begin < run_time) {
      clock_type::duration until_connected{};
      if (const auto e = c.connect_once(server.endpoint(), until_connected)) {
        failures.add(e);
      } else {
        ++connects;
      }
      use.add(until_connected);
    }
    seconds = std::chrono::duration<double>(clock_type::now() - begin).count();
    state.SetIterationTime(seconds);
  }
  use.report(state);
  failures.report(state);
  state.counters["connects_per_s"] = static_cast<double>(connects) / seconds;
  state.counters["budget_ports"] = budget;
  state.counters["tcp_tw_reuse"] = std::stod(read_sysctl("/proc/sys/net/ipv4/tcp_tw_reuse"));
  state.counters["tcp_timestamps"] = std::stod(read_sysctl("/proc/sys/net/ipv4/tcp_timestamps"));
  set_ephemeral_range(env.ephemeral);
  // TIME_WAIT sockets of this case stay behind; later cases use other ports.
}

} // namespace

void portres_bench::register_connect_cases() {
  for (const auto kind : {client_kind::autobind, client_kind::explicit_bind, client_kind::pool}) {
    register_levels(std::string("connect/") + to_string(kind), "occupancy", occupancy_levels, benchmark::kMicrosecond,
                    [kind](benchmark::State& s) { connect_cost(s, kind); });
  }
  auto churn_case = [](const std::string& name, client_kind kind, portres::port_policy policy) {
    benchmark::RegisterBenchmark(("churn/" + name).c_str(), [kind, policy](benchmark::State& s) { churn(s, kind, policy); })
        ->Iterations(1)
        ->Repetitions(1)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  };
  churn_case("autobind", client_kind::autobind, portres::port_policy::sequential);
  churn_case("explicit", client_kind::explicit_bind, portres::port_policy::sequential);
  for (const auto& p : policies) churn_case(std::string("pool_") + p.name, client_kind::pool, p.policy);
}
