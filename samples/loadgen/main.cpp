// loadgen: a TCP load generator. Churn (the default): each worker connects,
// optionally sends an HTTP/1.0 request and reads the reply, closes, and
// starts again. Hold (--hold N): opens N connections and keeps them until the
// end, to find how many a block of ports can carry. Targets and source
// addresses may be repeated; --threads runs several event loops. Failures are
// counted by errno name (EADDRNOTAVAIL: no usable local port or 4-tuple;
// ECONNREFUSED; ECONNRESET; ETIMEDOUT; ...), in the text and with --json.
// See --help.
#include "common/endpoints.hpp"
#include "common/net.hpp"
#include "loadgen/lane.hpp"
#include "loadgen/settings.hpp"
#include "loadgen/summary.hpp"

#include "cli/options.hpp"

#include <csignal>
#include <cstdio>
#include <thread>

namespace {

using namespace loadgen;

/// Where the ports come from, for the first line.
std::string ports_line(const settings& s, const portres::runtime_reservation& block) {
  std::string sources;
  for (const auto& a : s.sources) sources += (sources.empty() ? "" : ", ") + a.to_string();
  if (s.pool) {
    return "portres pool over block " + portres::to_string(block.range()) + " (" + portres::to_string(s.policy) + ")" +
           (sources.empty() ? "" : " from " + sources);
  }
  return sources.empty() ? "kernel autobind (ephemeral)"
                         : "kernel choice at connect (IP_BIND_ADDRESS_NO_PORT) from " + sources;
}

volatile std::sig_atomic_t interrupted = 0;

extern "C" void on_interrupt(int) { interrupted = 1; }

/// Each lane's share of `total`, the first lanes taking the remainder.
std::size_t share(std::size_t total, std::size_t lanes, std::size_t i) {
  return total / lanes + (i < total % lanes ? 1 : 0);
}

} // namespace

int main(int argc, char** argv) {
  settings s;
  try {
    s = parse(argc, argv);
    // Held connections each take a descriptor, and so do the pools' stock.
    const auto limit = samples::raise_descriptor_limit();
    const auto needed = s.hold + (s.pool ? 2 * s.concurrency : 0) + 64;
    if (s.hold && limit && needed > limit) {
      throw cli::usage_error("--hold " + std::to_string(s.hold) + " needs about " + std::to_string(needed) +
                             " open descriptors and this process may have " + std::to_string(limit) +
                             " (ulimit -n): split the connections over several loadgen processes");
    }
  } catch (const cli::usage_error& e) {
    std::fprintf(stderr, "loadgen: %s\n", e.what());
    return 2;
  }
  asio::io_context main_io; // the reservation's executor; the lanes run their own
  portres::runtime_reservation block;
  if (s.pool) {
    std::error_code ec;
    block = portres::acquire(main_io.get_executor(), portres::protocol::tcp, portres::port_range::wildcard(s.block), ec);
    if (ec) {
      std::fprintf(stderr, "loadgen: cannot reserve %u ports: %s\n", s.block, ec.message().c_str());
      return 1;
    }
  }
  if (!s.json) std::printf("ports: %s\n", ports_line(s, block).c_str());
  const auto begin = clock_type::now();
  const auto end = begin + s.duration;
  schedule pace(begin, s.rate);
  std::vector<std::unique_ptr<lane>> lanes;
  for (std::size_t i = 0, first = 0; i < s.threads; ++i) {
    const auto mine = share(s.hold, s.threads, i);
    lanes.push_back(std::make_unique<lane>(s, i, share(s.concurrency, s.threads, i), first, mine,
                                           s.pool ? &block : nullptr, pace, end));
    first += mine;
  }
  // SIGINT or SIGTERM ends the run early, with the summary of what was done.
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  std::vector<std::thread> threads;
  for (auto& l : lanes) threads.emplace_back([&l] { l->run(); });
  auto finished = end;
  for (int second = 1; clock_type::now() < end && !interrupted;) {
    const auto tick = std::min(end, begin + std::chrono::seconds(second));
    std::this_thread::sleep_until(std::min(tick, clock_type::now() + std::chrono::milliseconds(100)));
    if (interrupted) {
      finished = clock_type::now();
      for (auto& l : lanes) l->finish();
    } else if (clock_type::now() >= tick) {
      counts interval;
      for (auto& l : lanes) interval.merge(l->take_interval());
      if (!s.json) print_progress(s, second, interval);
      ++second;
    }
  }
  for (auto& t : threads) t.join();
  counts total;
  for (auto& l : lanes) total.merge(l->total());
  print_summary(s, total, std::chrono::duration<double>(finished - begin).count(), begin);
  return 0;
}
