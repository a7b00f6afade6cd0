// Case "capacity": how many concurrent TCP connections a 1,000-port block
// holds towards 1 and 4 destinations (127.0.0.1:9001-9004) from 1 and 4
// source addresses (127.0.0.1-4), and how fast they open: through a
// socket_pool (async_connect), through the generic API (associate +
// portres::bind(socket, sources, peer) + connect), and, beside them, kernel
// autobind with IP_BIND_ADDRESS_NO_PORT from a 1,000-port ephemeral range.
// Each case tries one connection more than ports x destinations x sources:
// the kernel and portres::bind refuse it (its error is counted), the pool
// keeps it waiting for a connection to come back (next_waiting = 1).
// The peers accept in a child process: 16,000 connections are 32,000
// descriptors, over the 20,000 limit of one process.
#include "bench_support.hpp"

#include "portres/portres.hpp"

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

using namespace portres_bench;
using tcp = asio::ip::tcp;

constexpr std::uint32_t block_ports = 1000;
constexpr port_span autobind_range{41000, 41999}; // 1,000 ports, outside the suite's 30000-39999
const auto time_limit = std::chrono::seconds(120);

asio::ip::address loopback_host(int n) { return asio::ip::address_v4((127u << 24) | static_cast<std::uint32_t>(n)); }

// Listeners on 127.0.0.1:9001.. accepting in a child process, which keeps
// every accepted socket open until it is killed (clients reset theirs
// first, so neither side leaves TIME_WAIT for the next case).
class peers {
public:
  explicit peers(int count) {
    for (int i = 0; i < count; ++i) {
      const int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      const int on = 1;
      ::setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(static_cast<std::uint16_t>(9001 + i));
      if (::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(l, 4096) != 0) error_ = errno;
      fds_[i] = l;
      endpoints_.emplace_back(loopback_host(1), static_cast<std::uint16_t>(9001 + i));
    }
    count_ = count;
    pid_ = ::fork();
    if (pid_ == 0) serve(); // never returns
    for (int i = 0; i < count_; ++i) ::close(fds_[i]);
  }
  ~peers() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  peers(const peers&) = delete;
  peers& operator=(const peers&) = delete;
  int error() const { return error_; }
  const tcp::endpoint& at(std::size_t i) const { return endpoints_[i % endpoints_.size()]; }

private:
  // System calls only (the parent may have threads); nothing is stored.
  [[noreturn]] void serve() {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    pollfd q[4];
    for (int i = 0; i < count_; ++i) q[i] = {fds_[i], POLLIN, 0};
    while (true) {
      if (::poll(q, static_cast<nfds_t>(count_), 1000) <= 0) continue;
      for (int i = 0; i < count_; ++i) {
        while (::accept4(fds_[i], nullptr, nullptr, SOCK_CLOEXEC) >= 0) {
        }
      }
    }
  }
  int fds_[4] = {-1, -1, -1, -1};
  int count_ = 0;
  int error_ = 0;
  int pid_ = -1;
  std::vector<tcp::endpoint> endpoints_;
};

void reset(tcp::socket& s) {
  std::error_code ignored;
  s.set_option(asio::socket_base::linger(true, 0), ignored);
  s.close(ignored);
}

struct shape {
  std::size_t destinations;
  std::vector<asio::ip::address> sources;
  std::size_t expected() const { return std::size_t{block_ports} * destinations * sources.size(); }
};

shape shape_of(const benchmark::State& state) {
  shape s{static_cast<std::size_t>(state.range(0)), {}};
  for (int i = 1; i <= state.range(1); ++i) s.sources.push_back(loopback_host(i));
  return s;
}

// What a case measured: connections held, failures, seconds to open them.
struct outcome {
  std::size_t held = 0;
  failure_counts failures;
  clock_type::duration took{};
  double next_waiting = 0;
};

void report(benchmark::State& state, const shape& s, const outcome& o) {
  const double seconds = std::chrono::duration<double>(o.took).count();
  state.SetIterationTime(seconds);
  state.counters["held"] = static_cast<double>(o.held);
  state.counters["expected"] = static_cast<double>(s.expected());
  state.counters["open_seconds"] = seconds;
  state.counters["per_second"] = seconds > 0 ? static_cast<double>(o.held) / seconds : 0;
  o.failures.report(state);
}

bool ready(benchmark::State& state, const peers& to) {
  if (!prepare_environment().private_netns) {
    state.SkipWithError("SKIPPED: needs a private network namespace (root): 127.0.0.1-4, a 1,000-port ephemeral range");
    return false;
  }
  if (to.error() != 0) {
    state.SkipWithError(("peers could not listen on 127.0.0.1:9001-9004: " + std::generic_category().message(to.error())).c_str());
    return false;
  }
  return true;
}

// socket_pool::async_connect, 256 in flight, the pool's sources in turn.
void capacity_pool(benchmark::State& state) {
  const auto s = shape_of(state);
  peers to(static_cast<int>(s.destinations));
  if (!ready(state, to)) return;
  for (auto _ : state) {
    asio::io_context io;
    outcome o;
    std::vector<portres::pooled_socket<tcp>> held;
    held.reserve(s.expected());
    std::size_t issued = 0, done = 0;
    bool extra_done = false;
    {
      auto block = portres::acquire(io.get_executor(), portres::protocol::tcp, portres::port_range::wildcard(block_ports));
      portres::socket_pool<tcp>::options opts;
      opts.low_water = 8;
      opts.high_water = 16;
      portres::socket_pool<tcp> pool(io.get_executor(), block, s.sources, opts);
      auto on_connect = [&](std::error_code ec, portres::pooled_socket<tcp> c) {
        ++done;
        if (ec) o.failures.add(ec);
        else held.push_back(std::move(c));
      };
      const auto start = clock_type::now();
      const auto deadline = start + time_limit;
      while (done < s.expected() && clock_type::now() < deadline) {
        for (; issued < s.expected() && issued - done < 256; ++issued) pool.async_connect(to.at(issued), on_connect);
        io.run_one_for(std::chrono::milliseconds(10));
      }
      o.took = clock_type::now() - start;
      o.held = held.size();
      // One more towards the first destination: every port towards it is in use.
      pool.async_connect(to.at(0), [&](std::error_code ec, portres::pooled_socket<tcp>) {
        extra_done = true;
        if (ec) o.failures.add(ec);
      });
      const auto wait_until = clock_type::now() + std::chrono::milliseconds(100);
      while (!extra_done && clock_type::now() < wait_until) io.run_one_for(std::chrono::milliseconds(10));
      o.next_waiting = extra_done ? 0 : 1;
      for (auto& c : held) reset(c.socket());
      held.clear();
      pool.close();
      io.poll(); // the waiting connect completes (aborted) while its state lives
    }
    report(state, s, o);
    state.counters["next_waiting"] = o.next_waiting;
  }
}

// Blocking connects one after the other, one more than the block holds:
// `open(socket, i)` prepares and connects the i-th (towards to.at(i)).
template <class Open>
void blocking_run(benchmark::State& state, const shape& s, asio::io_context& io, Open open) {
  outcome o;
  std::vector<tcp::socket> held;
  held.reserve(s.expected());
  const auto start = clock_type::now();
  const auto deadline = start + time_limit;
  for (std::size_t i = 0; i <= s.expected() && clock_type::now() < deadline; ++i) {
    tcp::socket c(io, tcp::v4());
    if (const auto ec = open(c, i)) o.failures.add(ec);
    else held.push_back(std::move(c));
  }
  o.took = clock_type::now() - start;
  o.held = held.size();
  for (auto& c : held) reset(c);
  report(state, s, o);
}

// The generic API: associate, bind towards the peer, blocking connect.
void capacity_bind(benchmark::State& state) {
  const auto s = shape_of(state);
  peers to(static_cast<int>(s.destinations));
  if (!ready(state, to)) return;
  for (auto _ : state) {
    asio::io_context io;
    auto block = portres::acquire(io.get_executor(), portres::protocol::tcp, portres::port_range::wildcard(block_ports));
    blocking_run(state, s, io, [&](tcp::socket& c, std::size_t i) {
      std::error_code ec;
      portres::associate(c, block.token(), ec);
      if (!ec) portres::bind(c, std::span<const asio::ip::address>(s.sources), to.at(i), ec);
      if (!ec) c.connect(to.at(i), ec);
      return ec;
    });
  }
}

// Kernel autobind: IP_BIND_ADDRESS_NO_PORT + bind(source, 0) + connect, the
// port chosen at connect from a 1,000-port ephemeral range; sources in turn.
void capacity_autobind(benchmark::State& state) {
  const auto s = shape_of(state);
  peers to(static_cast<int>(s.destinations));
  if (!ready(state, to)) return;
  const auto& env = prepare_environment();
  set_ephemeral_range(autobind_range);
  for (auto _ : state) {
    asio::io_context io;
    blocking_run(state, s, io, [&](tcp::socket& c, std::size_t i) {
      std::error_code ec;
      const int on = 1;
      if (::setsockopt(c.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof on) != 0)
        ec.assign(errno, std::generic_category());
      // Destination i % d from source (i / d) % sources: every pair in turn.
      if (!ec) c.bind(tcp::endpoint(s.sources[(i / s.destinations) % s.sources.size()], 0), ec);
      if (!ec) c.connect(to.at(i), ec);
      return ec;
    });
  }
  set_ephemeral_range(env.ephemeral);
}

void shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"destinations", "sources"});
  for (const std::int64_t d : {1, 4})
    for (const std::int64_t src : {1, 4}) b->Args({d, src});
  // One run per case: each holds up to 16,000 connections.
  b->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);
}

} // namespace

BENCHMARK(capacity_pool)->Name("capacity/pool")->Apply(shapes);
BENCHMARK(capacity_bind)->Name("capacity/bind")->Apply(shapes);
BENCHMARK(capacity_autobind)->Name("capacity/autobind_no_port")->Apply(shapes);
