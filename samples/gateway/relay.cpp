#include "gateway/relay.hpp"

#include "common/net.hpp"
#include "common/scoped_count.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/read_until.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/streambuf.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <string>

namespace gateway {

using asio::redirect_error;
using asio::use_awaitable;

relay::relay(tcp::acceptor& listener, const std::vector<tcp::endpoint>& upstreams,
             std::vector<asio::ip::address> sources, portres::socket_pool<tcp>* pool)
    : listener_(listener), sources_(std::move(sources)), pool_(pool) {
  for (const auto& u : upstreams) c_.upstreams.push_back({u});
}

void relay::start() { asio::co_spawn(listener_.get_executor(), accept_loop(), asio::detached); }

asio::awaitable<void> relay::accept_loop() {
  asio::steady_timer pause(listener_.get_executor());
  while (true) {
    std::error_code ec;
    auto client = co_await listener_.async_accept(redirect_error(use_awaitable, ec));
    if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) co_return;
    if (ec) {
      // Out of descriptors (EMFILE, ENFILE) or a client gone before accept:
      // that client is lost, the listener is not; pause so as not to spin.
      ++c_.client_errors;
      pause.expires_after(std::chrono::milliseconds(10));
      co_await pause.async_wait(redirect_error(use_awaitable, ec));
      continue;
    }
    asio::co_spawn(listener_.get_executor(), serve(std::move(client)), asio::detached);
  }
}

asio::awaitable<void> relay::upstream_failed(upstream& to, const std::error_code& ec, tcp::socket& client) {
  ++c_.upstream_errors;
  ++to.errors;
  c_.upstream_by_kind.add(ec);
  static const std::string bad = "HTTP/1.0 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n";
  std::error_code ignored; // the client may be gone too
  co_await asio::async_write(client, asio::buffer(bad), redirect_error(use_awaitable, ignored));
}

asio::awaitable<void> relay::serve(tcp::socket client) {
  auto ex = co_await asio::this_coro::executor;
  std::error_code ec;
  asio::streambuf request(64 * 1024);
  co_await asio::async_read_until(client, request, "\r\n\r\n", redirect_error(use_awaitable, ec));
  if (ec) {
    ++c_.client_errors;
    co_return;
  }
  ++c_.requests;
  const std::size_t n = next_++;
  auto& to = c_.upstreams[n % c_.upstreams.size()];
  ++to.requests;
  tcp::socket plain(ex);
  portres::pooled_socket<tcp> pooled;
  tcp::socket* up = &plain;
  if (pool_) {
    // Connect through the pool: EADDRNOTAVAIL (a port still closing) retries on another port.
    pooled = co_await pool_->async_connect(to.at, redirect_error(use_awaitable, ec));
    if (!ec) {
      up = &pooled.socket();
      c_.lowest_port = std::min(c_.lowest_port, pooled.port());
      c_.highest_port = std::max(c_.highest_port, pooled.port());
    }
  } else {
    plain.open(to.at.protocol(), ec);
    if (!ec && !sources_.empty()) samples::bind_source(plain, sources_[n / c_.upstreams.size() % sources_.size()], ec);
    if (!ec) co_await plain.async_connect(to.at, redirect_error(use_awaitable, ec));
  }
  if (ec) {
    co_await upstream_failed(to, ec, client);
    co_return;
  }
  const samples::scoped_count live(to.live);
  co_await asio::async_write(*up, request.data(), redirect_error(use_awaitable, ec));
  char buf[8192];
  while (!ec) {
    const auto got = co_await up->async_read_some(asio::buffer(buf), redirect_error(use_awaitable, ec));
    if (got > 0) {
      std::error_code wec;
      co_await asio::async_write(client, asio::buffer(buf, got), redirect_error(use_awaitable, wec));
      if (wec) {
        ++c_.abandoned;
        co_return;
      }
    }
  }
  if (ec != asio::error::eof) {
    co_await upstream_failed(to, ec, client);
    co_return;
  }
  ++c_.relayed;
  ++to.relayed;
  // HTTP/1.0: closing the client connection ends the reply; the upstream socket goes back to the pool.
}

asio::awaitable<void> builtin_upstream(tcp::acceptor& acceptor) {
  static const std::string reply = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n";
  while (true) {
    std::error_code ec;
    auto peer = co_await acceptor.async_accept(redirect_error(use_awaitable, ec));
    if (ec) co_return;
    asio::co_spawn(acceptor.get_executor(), [peer = std::move(peer)]() mutable -> asio::awaitable<void> {
      std::error_code e;
      asio::streambuf request;
      co_await asio::async_read_until(peer, request, "\r\n\r\n", redirect_error(use_awaitable, e));
      if (!e) co_await asio::async_write(peer, asio::buffer(reply), redirect_error(use_awaitable, e));
    }, asio::detached);
  }
}

} // namespace gateway
