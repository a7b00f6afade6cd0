// gateway: a high-churn HTTP/1.0 relay. For each client request it takes a
// pre-associated socket from a portres pool, connects upstream, relays the
// request and the reply, and closes both.
//
//   gateway --listen 127.0.0.1:8080 --upstream 127.0.0.1:9000
//   gateway --listen 127.0.0.1:0 --builtin-upstream --duration 10
//   --ports pool|ephemeral, --policy sequential|lru|random, --block N
#include "cli/json.hpp"
#include "common/net.hpp"

#include <portres/portres.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/read_until.hpp>
#include <asio/redirect_error.hpp>
#include <asio/signal_set.hpp>
#include <asio/streambuf.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>

namespace {

using tcp = asio::ip::tcp;

struct counters {
  std::uint64_t requests = 0, relayed = 0, upstream_errors = 0, client_errors = 0;
  std::map<std::string, std::uint64_t> upstream_by_kind; // errno name -> count
  std::uint16_t lowest_port = 65535, highest_port = 0;
};

// A trivial upstream for tests and demos: answers every request and closes.
asio::awaitable<void> builtin_upstream(tcp::acceptor& acceptor) {
  static const std::string reply = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n";
  while (true) {
    std::error_code ec;
    auto peer = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    asio::co_spawn(acceptor.get_executor(), [peer = std::move(peer)]() mutable -> asio::awaitable<void> {
      std::error_code e;
      asio::streambuf request;
      co_await asio::async_read_until(peer, request, "\r\n\r\n", asio::redirect_error(asio::use_awaitable, e));
      if (!e) co_await asio::async_write(peer, asio::buffer(reply), asio::redirect_error(asio::use_awaitable, e));
    }, asio::detached);
  }
}

asio::awaitable<void> relay(tcp::socket client, tcp::endpoint upstream, portres::socket_pool<tcp>* pool, counters& c) {
  auto ex = co_await asio::this_coro::executor;
  std::error_code ec;
  asio::streambuf request(64 * 1024);
  co_await asio::async_read_until(client, request, "\r\n\r\n", asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    ++c.client_errors;
    co_return;
  }
  ++c.requests;
  tcp::socket plain(ex);
  portres::pooled_socket<tcp> pooled;
  tcp::socket* up = &plain;
  if (pool) {
    // Connect through the pool: EADDRNOTAVAIL (a port still closing) retries on another port.
    pooled = co_await pool->async_connect(upstream, asio::redirect_error(asio::use_awaitable, ec));
    if (!ec) {
      up = &pooled.socket();
      c.lowest_port = std::min(c.lowest_port, pooled.port());
      c.highest_port = std::max(c.highest_port, pooled.port());
    }
  } else {
    co_await up->async_connect(upstream, asio::redirect_error(asio::use_awaitable, ec));
  }
  if (!ec) co_await asio::async_write(*up, request.data(), asio::redirect_error(asio::use_awaitable, ec));
  char buf[8192];
  while (!ec) {
    const auto n = co_await up->async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
    if (n > 0) {
      std::error_code wec;
      co_await asio::async_write(client, asio::buffer(buf, n), asio::redirect_error(asio::use_awaitable, wec));
      if (wec) {
        ++c.client_errors;
        co_return;
      }
    }
  }
  if (ec != asio::error::eof) {
    ++c.upstream_errors;
    ++c.upstream_by_kind[samples::error_kind(ec)];
    static const std::string bad = "HTTP/1.0 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n";
    co_await asio::async_write(client, asio::buffer(bad), asio::redirect_error(asio::use_awaitable, ec));
    co_return;
  }
  ++c.relayed;
  // HTTP/1.0: closing the client connection ends the reply; the upstream socket goes back to the pool.
}

asio::awaitable<void> accept_loop(tcp::acceptor& listener, tcp::endpoint upstream, portres::socket_pool<tcp>* pool,
                                  counters& c) {
  while (true) {
    std::error_code ec;
    auto client = co_await listener.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    asio::co_spawn(listener.get_executor(), relay(std::move(client), upstream, pool, c), asio::detached);
  }
}

} // namespace

int main(int argc, char** argv) {
  try {
    const cli::options o(argc, argv, {"listen", "upstream", "ports", "policy", "block", "duration"},
                             {"builtin-upstream", "json", "help"});
    if (o.flag("help")) {
      std::printf("usage: gateway --listen HOST:PORT (--upstream HOST:PORT | --builtin-upstream)\n"
                  "               [--ports pool|ephemeral] [--policy sequential|lru|random] [--block N] [--duration S]\n"
                  "               [--json]   (the final summary as JSON; upstream errors by errno name)\n");
      return 0;
    }
    const auto listen_at = samples::parse_endpoint(o.text("listen", "127.0.0.1:8080"), "--listen");
    const auto ports = o.text("ports", "pool");
    if (ports != "pool" && ports != "ephemeral") throw cli::usage_error("--ports must be pool or ephemeral");
    if (!o.has("upstream") && !o.flag("builtin-upstream")) {
      throw cli::usage_error("name an upstream: --upstream HOST:PORT or --builtin-upstream");
    }
    const auto policy_text = o.text("policy", "lru");
    const auto policy = policy_text == "sequential" ? portres::port_policy::sequential
                        : policy_text == "random"   ? portres::port_policy::random
                        : policy_text == "lru"      ? portres::port_policy::lru
                                                    : throw cli::usage_error("--policy must be sequential, lru or random");
    const auto block_size = static_cast<std::uint32_t>(o.number("block", 4096, 1, 16384));
    const auto duration = o.number("duration", 0, 0, 86400);

    asio::io_context io;
    tcp::acceptor upstream_acceptor(io);
    tcp::endpoint upstream;
    if (o.flag("builtin-upstream")) {
      upstream_acceptor = samples::make_listener(io, {asio::ip::address_v4::loopback(), 0});
      upstream = upstream_acceptor.local_endpoint();
      asio::co_spawn(io, builtin_upstream(upstream_acceptor), asio::detached);
    } else {
      upstream = samples::parse_endpoint(o.text("upstream", ""), "--upstream");
    }
    auto listener = samples::make_listener(io, listen_at, 4096);

    portres::runtime_reservation block;
    std::unique_ptr<portres::socket_pool<tcp>> pool;
    if (ports == "pool") {
      block = portres::acquire(io.get_executor(), portres::protocol::tcp, portres::port_range::wildcard(block_size));
      portres::socket_pool<tcp>::options opts;
      opts.policy = policy;
      opts.low_water = 32;
      opts.high_water = 128;
      opts.max_waiters = 4096;
    // A port whose last connection is in TIME_WAIT can be bound again with
    // SO_REUSEADDR (set on Linux only: net.hpp); with TCP timestamps on,
    // connect() takes over the TIME_WAIT 4-tuple at once (tcp_tw_reuse
    // governs only autobind).
    opts.configure = samples::configure_client_socket;
      pool = std::make_unique<portres::socket_pool<tcp>>(io.get_executor(), block, upstream.address(), opts);
    }
    counters c;
    std::printf("gateway listening on %s:%u, upstream %s:%u, upstream ports: %s\n",
                listener.local_endpoint().address().to_string().c_str(), listener.local_endpoint().port(),
                upstream.address().to_string().c_str(), upstream.port(),
                pool ? ("pool over block " + portres::to_string(block.range()) + " (" + policy_text + ")").c_str()
                     : "kernel autobind");
    std::fflush(stdout);
    asio::co_spawn(io, accept_loop(listener, upstream, pool.get(), c), asio::detached);
    asio::signal_set stop(io, SIGINT, SIGTERM);
    stop.async_wait([&](std::error_code, int) { io.stop(); });
    if (duration > 0) {
      io.run_for(std::chrono::seconds(duration));
    } else {
      io.run();
    }
    std::string kinds, json_kinds;
    for (const auto& [kind, n] : c.upstream_by_kind) {
      kinds += (kinds.empty() ? " (" : ", ") + kind + "=" + std::to_string(n);
      json_kinds += std::string(json_kinds.empty() ? "" : ",") + cli::json_string(kind) + ":" + std::to_string(n);
    }
    if (!kinds.empty()) kinds += ")";
    if (o.flag("json")) {
      std::printf("{\"ports\":\"%s\",\"requests\":%llu,\"relayed\":%llu,\"upstream_errors\":%llu,"
                  "\"upstream_errors_by_kind\":{%s},\"client_errors\":%llu}\n",
                  pool ? "pool" : "ephemeral", static_cast<unsigned long long>(c.requests),
                  static_cast<unsigned long long>(c.relayed), static_cast<unsigned long long>(c.upstream_errors),
                  json_kinds.c_str(), static_cast<unsigned long long>(c.client_errors));
      return 0;
    }
    std::printf("gateway summary: %llu requests, %llu relayed, %llu upstream errors%s, %llu client errors",
                static_cast<unsigned long long>(c.requests), static_cast<unsigned long long>(c.relayed),
                static_cast<unsigned long long>(c.upstream_errors), kinds.c_str(),
                static_cast<unsigned long long>(c.client_errors));
    if (pool && c.highest_port != 0) {
      std::printf(", upstream source ports %u-%u, all inside %s: %s", c.lowest_port, c.highest_port,
                  portres::to_string(block.range()).c_str(),
                  block.range().contains(c.lowest_port) && block.range().contains(c.highest_port) ? "yes" : "NO");
    }
    std::printf("\n");
    return 0;
  } catch (const cli::usage_error& e) {
    std::fprintf(stderr, "gateway: %s\n", e.what());
    return 2;
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "gateway: %s\n", e.what());
    return 1;
  }
}
