// Whole per-socket cost of getting a bound socket.
//
// bind/<method>/<layout>/occupancy:N  other processes hold N % of the
//   ephemeral range (portres' block lies outside that range by design).
//   explicit: SO_REUSEADDR + bind(known free port), written by hand;
//   ephemeral: bind(port 0); portres: associate + portres::bind;
//   portres_bind_only: portres::bind alone (associate before the timer).
//   Socket creation and close are outside the timed region for all of them.
// own/<method>/fullness:P  P per mille of a 16,384-port block held by the
//   caller's own live sockets: portres (each policy) draws from a 16,384-port
//   reservation; explicit binds a free port from its own free list of 16,384;
//   ephemeral binds port 0 with ip_local_port_range narrowed to 16,384 ports.
//   Each bound socket is closed after its bind, so the caller's newest port
//   is the one that comes back (the churn port_reclaim probes first).
// own_close_random/<method>/fullness:P  the same, but each bind's socket
//   joins the live ones and a live socket drawn at random is closed instead:
//   the port that comes back is one of the long-lived cohort. (No explicit
//   case: a hand-written free list would know that port at once.)
#include "bench_support.hpp"

#include "portres/portres.hpp"

#include "core/portable_backend.hpp" // detail::held_port_queries(), port_probes(): what a dry block cost

#include <asio/io_context.hpp>

#include <numeric>
#include <random>

namespace {

using namespace portres_bench;
using tcp = asio::ip::tcp;

constexpr std::uint16_t floor_first = 20000; // below the ephemeral range: always free
constexpr std::uint16_t floor_count = 5000;

enum class method { explicit_port, ephemeral, portres_bind, portres_bind_only };

void bind_latency(benchmark::State& state, method how, pattern layout) {
  prepare_environment();
  const int percent = static_cast<int>(state.range(0));
  occupancy occupied(percent, layout);
  asio::io_context io;
  portres::runtime_reservation block;
  if (how == method::portres_bind || how == method::portres_bind_only) {
    block = portres::acquire(io.get_executor(), portres::protocol::tcp, portres::port_range::wildcard(1024));
  }
  latencies lat;
  failure_counts failures;
  std::uint64_t i = 0;
  for (auto _ : state) {
    tcp::socket socket(io, tcp::v4());
    std::error_code ec;
    if (how == method::portres_bind_only) portres::associate(socket, block.token(), ec);
    const auto start = clock_type::now();
    switch (how) {
    case method::explicit_port:
      socket.set_option(asio::socket_base::reuse_address(true), ec);
      if (!ec) socket.bind({loopback, static_cast<std::uint16_t>(floor_first + i % floor_count)}, ec);
      break;
    case method::ephemeral: socket.bind({loopback, 0}, ec); break;
    case method::portres_bind:
      portres::associate(socket, block.token(), ec);
      if (!ec) portres::bind(socket, loopback, ec);
      break;
    case method::portres_bind_only: portres::bind(socket, loopback, ec); break;
    }
    const auto stop = clock_type::now();
    ++i;
    if (ec) failures.add(ec);
    lat.add_timed(state, stop - start);
  }
  lat.report(state);
  failures.report(state);
  state.counters["occupancy_pct"] = percent;
  state.counters["occupied_ports"] = static_cast<double>(occupied.held());
}

constexpr std::uint32_t own_size = 16384;
constexpr port_span own_ephemeral{32768, 49151}; // 16,384 ports
constexpr port_span own_explicit{49152, 65535};  // the hand-written client's own 16,384 ports

enum class own_method { explicit_port, ephemeral, portres_bind };

std::vector<std::uint16_t> shuffled(port_span span) {
  std::vector<std::uint16_t> ports(span.count());
  std::iota(ports.begin(), ports.end(), span.first);
  std::shuffle(ports.begin(), ports.end(), std::mt19937(7));
  return ports;
}

void own_fullness(benchmark::State& state, own_method how, portres::port_policy policy, bool close_random) {
  const auto& env = prepare_environment();
  const auto permille = static_cast<std::uint32_t>(state.range(0));
  const auto wanted = own_size * permille / 1000;
  if (how == own_method::ephemeral && !env.private_netns) {
    state.SkipWithError("needs root for a private network namespace (narrowed ip_local_port_range)");
    return;
  }
  asio::io_context io;
  std::vector<tcp::socket> held;
  held.reserve(wanted);
  std::vector<std::uint16_t> free_ports;
  portres::runtime_reservation block;
  std::error_code ec;
  const auto fill_start = clock_type::now();
  if (how == own_method::portres_bind) {
    block = portres::acquire(io.get_executor(), portres::protocol::tcp, portres::port_range::wildcard(own_size), ec);
    if (!ec) block.set_port_policy(policy, ec);
    if (ec) {
      state.SkipWithError(("acquire of 16,384 ports failed: " + ec.message()).c_str());
      return;
    }
    for (std::uint32_t k = 0; k < wanted && !ec; ++k) {
      tcp::socket s(io, tcp::v4());
      portres::associate(s, block.token(), ec);
      if (!ec) portres::bind(s, loopback, ec);
      if (!ec) held.push_back(std::move(s));
    }
  } else {
    const auto span = how == own_method::ephemeral ? own_ephemeral : own_explicit;
    if (how == own_method::ephemeral) set_ephemeral_range(own_ephemeral);
    auto ports = shuffled(span);
    for (std::uint32_t k = 0; k < wanted && !ec; ++k) {
      tcp::socket s(io, tcp::v4());
      if (how == own_method::explicit_port) s.set_option(asio::socket_base::reuse_address(true), ec);
      if (!ec) s.bind({loopback, ports[k]}, ec);
      if (!ec) held.push_back(std::move(s));
    }
    free_ports.assign(ports.begin() + static_cast<std::ptrdiff_t>(held.size()), ports.end());
  }
  const double fill_s = std::chrono::duration<double>(clock_type::now() - fill_start).count();
  if (ec) {
    if (how == own_method::ephemeral) set_ephemeral_range(env.ephemeral);
    state.SkipWithError(("filling the block failed after " + std::to_string(held.size()) + " sockets: " + ec.message()).c_str());
    return;
  }
  latencies lat;
  failure_counts failures;
  std::size_t next_free = 0;
  std::mt19937 pick(11);
  // Inside the timed binds only: the fill above may list held ports too.
  const auto queries_before = portres::detail::held_port_queries();
  const auto probes_before = portres::detail::port_probes();
  for (auto _ : state) {
    tcp::socket socket(io, tcp::v4());
    std::error_code e;
    const auto start = clock_type::now();
    switch (how) {
    case own_method::explicit_port:
      // A hand-written client keeps its own free list: the next free port.
      socket.set_option(asio::socket_base::reuse_address(true), e);
      if (!e) socket.bind({loopback, free_ports[next_free++ % free_ports.size()]}, e);
      break;
    case own_method::ephemeral: socket.bind({loopback, 0}, e); break;
    case own_method::portres_bind:
      portres::associate(socket, block.token(), e);
      if (!e) portres::bind(socket, loopback, e);
      break;
    }
    const auto stop = clock_type::now();
    if (e) failures.add(e);
    lat.add_timed(state, stop - start);
    if (close_random && !e && !held.empty()) { // outside the timed region, as every close
      std::swap(held[std::uniform_int_distribution<std::size_t>(0, held.size() - 1)(pick)], socket);
    }
  }
  lat.report(state);
  failures.report(state);
  state.counters["held_sockets"] = static_cast<double>(held.size());
  // Whether a millisecond tail is a held-ports query (a kernel walk) or preemption.
  state.counters["held_port_queries"] = static_cast<double>(portres::detail::held_port_queries() - queries_before);
  state.counters["port_probes"] = static_cast<double>(portres::detail::port_probes() - probes_before);
  state.counters["fullness_permille"] = permille;
  state.counters["fill_s"] = fill_s;
  held.clear();
  if (how == own_method::ephemeral) set_ephemeral_range(env.ephemeral);
}

} // namespace

void portres_bench::register_bind_cases(std::int64_t iterations) {
  auto fixed = [iterations](benchmark::internal::Benchmark* b) {
    if (iterations > 0) b->Iterations(iterations);
  };
  struct variant {
    const char* name;
    method how;
  };
  for (const auto v : {variant{"explicit", method::explicit_port}, variant{"ephemeral", method::ephemeral},
                       variant{"portres", method::portres_bind}, variant{"portres_bind_only", method::portres_bind_only}}) {
    for (const auto layout : {pattern::random, pattern::clustered}) {
      if (v.how == method::portres_bind_only && layout == pattern::clustered) continue;
      const std::string name = std::string("bind/") + v.name + (layout == pattern::random ? "/random" : "/clustered");
      fixed(register_levels(name, "occupancy", occupancy_levels, benchmark::kMicrosecond,
                            [v, layout](benchmark::State& s) { bind_latency(s, v.how, layout); }));
    }
  }
  auto own = [&fixed](const std::string& name, own_method how, portres::port_policy policy, bool close_random) {
    fixed(register_levels((close_random ? "own_close_random/" : "own/") + name, "fullness", {0, 500, 900, 990, 999},
                          benchmark::kMicrosecond,
                          [how, policy, close_random](benchmark::State& s) { own_fullness(s, how, policy, close_random); }));
  };
  for (const bool close_random : {false, true}) {
    if (!close_random) own("explicit", own_method::explicit_port, portres::port_policy::sequential, false);
    own("ephemeral", own_method::ephemeral, portres::port_policy::sequential, close_random);
    for (const auto& p : policies) {
      own(std::string("portres_") + p.name, own_method::portres_bind, p.policy, close_random);
    }
  }
}
