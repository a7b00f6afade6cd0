// loadgen: a high-churn TCP client. Each worker connects, optionally sends an
// HTTP/1.0 request and reads the reply, and closes, as fast as allowed.
//
//   loadgen --target 127.0.0.1:8080 --concurrency 32 --duration 10 --ports pool --http
//   --ports pool|ephemeral   portres socket pool (with --policy) or kernel autobind
//   --close client|server|rst  who closes first (rst: abortive close, no TIME_WAIT)
//   --rate N                 cap on connections per second (0 = none)
//   --json                   the final summary as JSON
// Failures are counted by errno name (EADDRNOTAVAIL: no usable local port or
// 4-tuple; ECONNREFUSED; ECONNRESET; ETIMEDOUT; ...), in the text and --json.
#include "cli/json.hpp"
#include "common/net.hpp"

#include <portres/portres.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/read.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>

namespace {

using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

struct settings {
  tcp::endpoint target;
  std::size_t concurrency = 8;
  double rate = 0;
  std::chrono::seconds duration{5};
  bool pool = true;
  portres::port_policy policy = portres::port_policy::lru;
  std::string close = "client";
  bool http = false;
  bool json = false;
  std::uint32_t block = 4096;
};

struct totals {
  std::uint64_t connections = 0, bytes = 0;
  std::map<std::string, std::uint64_t> errors; // by kind
  samples::latency_summary connect_us, interval_us;
  std::uint64_t interval_connections = 0;
};

asio::awaitable<void> worker(const settings& s, totals& t, portres::socket_pool<tcp>* pool, clock_type::time_point end,
                             std::shared_ptr<clock_type::time_point> next_slot) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer pace(ex);
  while (clock_type::now() < end) {
    if (s.rate > 0) {
      // One shared schedule: each connection takes the next slot.
      const auto slot = *next_slot;
      *next_slot += std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(1.0 / s.rate));
      pace.expires_at(slot);
      std::error_code ignored;
      co_await pace.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
      if (clock_type::now() >= end) break;
    }
    std::error_code ec;
    tcp::socket plain(ex);
    portres::pooled_socket<tcp> pooled;
    tcp::socket* socket = &plain;
    const auto start = clock_type::now();
    if (pool) {
      // The pool's connect retries on another port when the kernel says the
      // 4-tuple is still taken (EADDRNOTAVAIL: the last connection closing).
      pooled = co_await pool->async_connect(s.target, asio::redirect_error(asio::use_awaitable, ec));
      if (!ec) socket = &pooled.socket();
    } else {
      co_await socket->async_connect(s.target, asio::redirect_error(asio::use_awaitable, ec));
    }
    if (ec) {
      ++t.errors[samples::error_kind(ec)];
      continue;
    }
    const double us = std::chrono::duration<double, std::micro>(clock_type::now() - start).count();
    t.connect_us.add(us);
    t.interval_us.add(us);
    if (s.http) {
      static const std::string request = "GET / HTTP/1.0\r\nHost: loadgen\r\n\r\n";
      co_await asio::async_write(*socket, asio::buffer(request), asio::redirect_error(asio::use_awaitable, ec));
      if (!ec && s.close != "client") {
        char buf[4096];
        std::size_t n = 0;
        do {
          n = co_await socket->async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
          t.bytes += n;
        } while (!ec);
        if (ec == asio::error::eof) ec.clear();
      } else if (!ec) {
        char buf[4096];
        const auto n = co_await socket->async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
        t.bytes += n;
      }
      if (ec) {
        ++t.errors[samples::error_kind(ec)];
        continue;
      }
    } else if (s.close == "server") {
      char buf[64];
      co_await socket->async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
    }
    if (s.close == "rst") socket->set_option(asio::socket_base::linger(true, 0), ec);
    ++t.connections;
    ++t.interval_connections;
  }
}

asio::awaitable<void> progress(totals& t, clock_type::time_point end, bool quiet) {
  asio::steady_timer tick(co_await asio::this_coro::executor);
  int second = 0;
  while (clock_type::now() < end) {
    tick.expires_after(std::chrono::seconds(1));
    co_await tick.async_wait(asio::use_awaitable);
    std::uint64_t errors = 0;
    std::string kinds;
    for (const auto& [kind, n] : t.errors) {
      errors += n;
      kinds += " " + kind + "=" + std::to_string(n);
    }
    if (!quiet) {
      std::printf("[%3ds] %6llu conn/s  errors %llu%s  connect p99 %.1f us\n", ++second,
                  static_cast<unsigned long long>(t.interval_connections), static_cast<unsigned long long>(errors),
                  kinds.c_str(), t.interval_us.percentile(0.99));
      std::fflush(stdout);
    }
    t.interval_connections = 0;
    t.interval_us.clear();
  }
}

settings parse(int argc, char** argv) {
  const cli::options o(argc, argv, {"target", "concurrency", "rate", "duration", "ports", "policy", "close", "block"},
                           {"http", "json", "help"});
  if (o.flag("help")) {
    std::printf("usage: loadgen --target HOST:PORT [--concurrency N] [--rate N] [--duration S]\n"
                "               [--ports pool|ephemeral] [--policy sequential|lru|random] [--block N]\n"
                "               [--close client|server|rst] [--http] [--json]\n");
    std::exit(0);
  }
  settings s;
  if (!o.has("target")) throw cli::usage_error("--target HOST:PORT is required");
  s.target = samples::parse_endpoint(o.text("target", ""), "--target");
  s.concurrency = o.number("concurrency", 8, 1, 10000);
  s.rate = static_cast<double>(o.number("rate", 0, 0, 10000000));
  s.duration = std::chrono::seconds(o.number("duration", 5, 1, 3600));
  s.block = static_cast<std::uint32_t>(o.number("block", 4096, 1, 16384));
  const auto ports = o.text("ports", "pool");
  if (ports != "pool" && ports != "ephemeral") throw cli::usage_error("--ports must be pool or ephemeral");
  s.pool = ports == "pool";
  const auto policy = o.text("policy", "lru");
  if (policy == "sequential") s.policy = portres::port_policy::sequential;
  else if (policy == "lru") s.policy = portres::port_policy::lru;
  else if (policy == "random") s.policy = portres::port_policy::random;
  else throw cli::usage_error("--policy must be sequential, lru or random");
  s.close = o.text("close", "client");
  if (s.close != "client" && s.close != "server" && s.close != "rst") {
    throw cli::usage_error("--close must be client, server or rst");
  }
  s.http = o.flag("http");
  s.json = o.flag("json");
  return s;
}

} // namespace

int main(int argc, char** argv) {
  settings s;
  try {
    s = parse(argc, argv);
  } catch (const cli::usage_error& e) {
    std::fprintf(stderr, "loadgen: %s\n", e.what());
    return 2;
  }
  asio::io_context io;
  totals t;
  portres::runtime_reservation block;
  std::unique_ptr<portres::socket_pool<tcp>> pool;
  if (s.pool) {
    std::error_code ec;
    block = portres::acquire(io.get_executor(), portres::protocol::tcp, portres::port_range::wildcard(s.block), ec);
    if (ec) {
      std::fprintf(stderr, "loadgen: cannot reserve %u ports: %s\n", s.block, ec.message().c_str());
      return 1;
    }
    portres::socket_pool<tcp>::options o;
    o.policy = s.policy;
    o.low_water = s.concurrency;
    o.high_water = s.concurrency * 2;
    o.max_waiters = s.concurrency * 2;
    // Client-closes-first churn leaves each port in TIME_WAIT for 60 s. On Linux
    // the client sets SO_REUSEADDR (net.hpp) so the pool can bind such a port
    // again, and with TCP timestamps on connect() takes over the TIME_WAIT
    // 4-tuple at once (tcp_tw_reuse governs only autobind, not an explicitly
    // bound socket). On Windows clients set nothing (SO_REUSEADDR would let
    // another socket steal the port).
    o.configure = samples::configure_client_socket;
    pool = std::make_unique<portres::socket_pool<tcp>>(io.get_executor(), block, s.target.address().is_v6()
                                                          ? asio::ip::address(asio::ip::address_v6::any())
                                                          : asio::ip::address(asio::ip::address_v4::any()), o);
    if (!s.json) std::printf("ports: portres pool over block %s (%s)\n", portres::to_string(block.range()).c_str(),
                             portres::to_string(s.policy));
  } else if (!s.json) {
    std::printf("ports: kernel autobind (ephemeral)\n");
  }
  const auto begin = clock_type::now();
  const auto end = begin + s.duration;
  auto next_slot = std::make_shared<clock_type::time_point>(begin);
  for (std::size_t i = 0; i < s.concurrency; ++i) asio::co_spawn(io, worker(s, t, pool.get(), end, next_slot), asio::detached);
  asio::co_spawn(io, progress(t, end, s.json), asio::detached);
  io.run_until(end + std::chrono::seconds(5));
  if (pool) pool->close();
  const double seconds = std::chrono::duration<double>(clock_type::now() - begin).count();
  std::uint64_t errors = 0;
  std::string kinds, json_kinds;
  for (const auto& [kind, n] : t.errors) {
    errors += n;
    kinds += " " + kind + "=" + std::to_string(n);
    json_kinds += std::string(json_kinds.empty() ? "" : ",") + cli::json_string(kind) + ":" + std::to_string(n);
  }
  const double rate = static_cast<double>(t.connections) / seconds;
  if (s.json) {
    std::printf("{\"ports\":\"%s\",\"connections\":%llu,\"errors\":%llu,\"errors_by_kind\":{%s},\"seconds\":%.2f,"
                "\"connections_per_s\":%.1f,\"connect_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"max\":%.1f},"
                "\"bytes\":%llu}\n",
                s.pool ? "pool" : "ephemeral", static_cast<unsigned long long>(t.connections),
                static_cast<unsigned long long>(errors), json_kinds.c_str(), seconds, rate, t.connect_us.percentile(0.5),
                t.connect_us.percentile(0.9), t.connect_us.percentile(0.99), t.connect_us.percentile(1.0),
                static_cast<unsigned long long>(t.bytes));
  } else {
    std::printf("summary: %llu connections in %.1f s = %.0f conn/s, errors %llu%s\n"
                "connect latency: p50 %.1f us, p90 %.1f us, p99 %.1f us, max %.1f us; %llu bytes received\n",
                static_cast<unsigned long long>(t.connections), seconds, rate, static_cast<unsigned long long>(errors),
                kinds.c_str(), t.connect_us.percentile(0.5), t.connect_us.percentile(0.9), t.connect_us.percentile(0.99),
                t.connect_us.percentile(1.0), static_cast<unsigned long long>(t.bytes));
  }
  return 0;
}
