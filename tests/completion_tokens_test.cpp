// Every asynchronous operation works with each completion token: callback,
// asio::use_future, asio::use_awaitable (co_spawn) and deferred
// (asio::deferred; asio::experimental::deferred before Asio 1.24).
#include "portres/portres.hpp"

#include "deferred_token.hpp"
#include "support.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/udp.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>

#include <chrono>
#include <future>
#include <thread>

using namespace portres;

TEST_CASE("callback") {
  asio::io_context io;
  int steps = 0;
  asio::ip::tcp::socket socket(io, asio::ip::tcp::v4());
  runtime_reservation kept;
  async_acquire(io.get_executor(), protocol::tcp, port_range::wildcard(4), [&](std::error_code ec, runtime_reservation r) {
    REQUIRE_FALSE(ec);
    ++steps;
    const auto token = r.token();
    async_associate(socket, token, [&, r = std::move(r)](std::error_code ec2) mutable {
      REQUIRE_FALSE(ec2);
      ++steps;
      CHECK(r.range().contains(portres::bind(socket)));
      kept = std::move(r);
      kept.async_release([&](std::error_code ec3) {
        CHECK_FALSE(ec3);
        ++steps;
      });
    });
  });
  io.run();
  CHECK(steps == 3);
}

TEST_CASE("use_future") {
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });
  asio::ip::tcp::socket socket(io, asio::ip::tcp::v4());
  auto r = async_acquire(io.get_executor(), protocol::tcp, port_range::wildcard(4), asio::use_future).get();
  CHECK(r.range().count() == 4);
  async_associate(socket, r.token(), asio::use_future).get();
  CHECK(r.range().contains(portres::bind(socket)));
  r.async_release(asio::use_future).get();
  std::future<void> failed = r.async_release(asio::use_future);
  guard.reset();
  runner.join();
  // Delivered through the I/O executor (not Asio's system pool), so the
  // result is set once the thread running the io_context has finished.
  REQUIRE(failed.wait_for(std::chrono::seconds(0)) == std::future_status::ready);
  CHECK_THROWS_AS(failed.get(), std::system_error);
}

TEST_CASE("use_awaitable") {
  asio::io_context io;
  bool finished = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        auto r = co_await async_acquire(ex, protocol::tcp, port_range::wildcard(4), asio::use_awaitable);
        asio::ip::tcp::socket socket(ex, asio::ip::tcp::v4());
        co_await async_associate(socket, r.token(), asio::use_awaitable);
        CHECK(r.range().contains(portres::bind(socket)));
        co_await r.async_release(asio::use_awaitable);
        finished = true;
      },
      asio::detached);
  io.run();
  CHECK(finished);
}

TEST_CASE("deferred") {
  asio::io_context io;
  bool finished = false;
  auto op = async_acquire(io.get_executor(), protocol::udp, port_range::wildcard(2), portres_test::deferred);
  std::move(op)([&](std::error_code ec, runtime_reservation r) {
    CHECK_FALSE(ec);
    auto release = r.async_release(portres_test::deferred);
    std::move(release)([&](std::error_code ec2) {
      CHECK_FALSE(ec2);
      finished = true;
    });
  });
  io.run();
  CHECK(finished);
}

TEST_CASE("socket_pool::async_get with each completion token") {
  asio::io_context io;
  auto r = acquire(io.get_executor(), protocol::udp, port_range::wildcard(8));
  socket_pool<asio::ip::udp>::options o;
  o.low_water = 1;
  o.high_water = 4;
  socket_pool<asio::ip::udp> pool(io.get_executor(), r, asio::ip::address_v4::loopback(), o);
  int got = 0;
  pool.async_get([&](std::error_code ec, pooled_socket<asio::ip::udp> s) {
    CHECK_FALSE(ec);
    CHECK(r.range().contains(s.port()));
    ++got;
  });
  auto deferred_get = pool.async_get(portres_test::deferred);
  std::move(deferred_get)([&](std::error_code ec, pooled_socket<asio::ip::udp>) {
    CHECK_FALSE(ec);
    ++got;
  });
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto s = co_await pool.async_get(asio::use_awaitable);
        CHECK(r.range().contains(s.port()));
        ++got;
      },
      asio::detached);
  io.run_for(std::chrono::seconds(2));
  CHECK(got == 3);

  auto guard = asio::make_work_guard(io);
  io.restart();
  std::thread runner([&] { io.run(); });
  auto s = pool.async_get(asio::use_future).get();
  CHECK(r.range().contains(s.port()));
  s = {};
  guard.reset();
  pool.close();
  runner.join();
}

TEST_CASE("callback: a named handler (an lvalue) is copied, as Asio allows, and the copy is called once") {
  asio::io_context io;
  int calls = 0;
  runtime_reservation kept;
  const auto on_acquired = [&](std::error_code ec, runtime_reservation r) {
    CHECK_FALSE(ec);
    kept = std::move(r);
    ++calls;
  };
  async_acquire(io.get_executor(), protocol::udp, port_range::wildcard(4), on_acquired);
  io.run_for(std::chrono::seconds(2));
  REQUIRE(calls == 1);
  socket_pool<asio::ip::udp>::options o;
  o.low_water = 1;
  o.high_water = 2;
  socket_pool<asio::ip::udp> pool(io.get_executor(), kept, asio::ip::address_v4::loopback(), o);
  auto on_socket = [&](std::error_code ec, pooled_socket<asio::ip::udp> s) {
    CHECK_FALSE(ec);
    CHECK(kept.range().contains(s.port()));
    ++calls;
  };
  pool.async_get(on_socket);
  pool.async_get(on_socket);
  io.restart();
  io.run_for(std::chrono::seconds(2));
  CHECK(calls == 3);
}
