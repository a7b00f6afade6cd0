#include "portres/socket_pool.hpp"

#include "conformance.hpp"
#include "support.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/udp.hpp>

#include <asio/bind_executor.hpp>
#include <asio/strand.hpp>

#include <atomic>
#include <numeric>
#include <set>
#include <thread>
#include <vector>

using namespace portres;
using portres_test::backend_scope;
using portres_test::run_until;
using udp_pool = socket_pool<asio::ip::udp>;
using tcp_pool = socket_pool<asio::ip::tcp>;

namespace {
const asio::ip::address loopback = asio::ip::address_v4::loopback();

udp_pool::options sizes(std::size_t low, std::size_t high, std::size_t max_waiters = 64) {
  udp_pool::options o;
  o.low_water = low;
  o.high_water = high;
  o.max_waiters = max_waiters;
  return o;
}
} // namespace

TEST_CASE("pool: warm-up fills to the high water mark, and a get with stock is served from it") {
  asio::io_context io;
  PORTRES_FOR_EACH_BACKEND(kind) {
    backend_scope scope(kind, io);
    auto r = acquire(io.get_executor(), protocol::udp, port_range::wildcard(32));
    udp_pool pool(io.get_executor(), r, loopback, sizes(4, 8));
    CHECK(run_until(io, [&] { return pool.stats().ready == 8; }));
    CHECK(pool.stats().refills == 8);

    pooled_socket<asio::ip::udp> got;
    int calls = 0;
    pool.async_get([&](std::error_code ec, pooled_socket<asio::ip::udp> s) {
      ++calls;
      CHECK_FALSE(ec);
      got = std::move(s);
    });
    CHECK(calls == 0); // through the executor, never inline
    CHECK(run_until(io, [&] { return calls == 1; }));
    REQUIRE(got);
    CHECK(r.range().contains(got.port()));
    CHECK(got->local_endpoint().port() == got.port());
    const auto stats = pool.stats();
    CHECK(stats.hits == 1);
    CHECK(stats.misses == 0);
    CHECK(stats.in_use == 1);
    CHECK(stats.refills == 8); // no socket was created for the get
  }
}

TEST_CASE("pool: refills in the background after draining below the low water mark") {
  asio::io_context io;
  auto r = acquire(io.get_executor(), protocol::udp, port_range::wildcard(32));
  udp_pool pool(io.get_executor(), r, loopback, sizes(4, 8));
  REQUIRE(run_until(io, [&] { return pool.stats().ready == 8; }));
  std::vector<pooled_socket<asio::ip::udp>> taken;
  std::error_code ec;
  for (int i = 0; i < 6; ++i) {
    taken.push_back(pool.try_get(ec));
    REQUIRE_FALSE(ec);
  }
  CHECK(pool.stats().ready == 2);
  CHECK(run_until(io, [&] { return pool.stats().ready == 8; }));
  CHECK(pool.stats().in_use == 6);
  std::set<std::uint16_t> ports;
  for (auto& s : taken) ports.insert(s.port());
  CHECK(ports.size() == 6);
}

TEST_CASE("pool: waiters are served first-come first-served as sockets return") {
  asio::io_context io;
  PORTRES_FOR_EACH_BACKEND(kind) {
    backend_scope scope(kind, io);
    auto r = acquire(io.get_executor(), protocol::udp, port_range::wildcard(3));
    udp_pool pool(io.get_executor(), r, loopback, sizes(0, 3));
    REQUIRE(run_until(io, [&] { return pool.stats().ready == 3; }));
    std::vector<pooled_socket<asio::ip::udp>> held;
    std::error_code ec;
    for (int i = 0; i < 3; ++i) held.push_back(pool.try_get(ec));
    pool.try_get(ec);
    CHECK(ec == std::errc::operation_would_block);

    std::vector<int> order;
    std::vector<pooled_socket<asio::ip::udp>> served;
    for (int i = 1; i <= 3; ++i) {
      pool.async_get([&, i](std::error_code e, pooled_socket<asio::ip::udp> s) {
        CHECK_FALSE(e);
        order.push_back(i);
        served.push_back(std::move(s));
      });
    }
    // The pool tries, finds the block used up, and keeps them waiting: no error.
    CHECK(run_until(io, [&] { return pool.stats().exhausted_events >= 1; }));
    io.run_for(std::chrono::milliseconds(20));
    CHECK(order.empty());
    CHECK(pool.stats().waiters == 3);
    for (std::size_t i = 0; i < held.size(); ++i) {
      held[i] = {};
      CHECK(run_until(io, [&] { return order.size() == i + 1; }));
    }
    CHECK(order == std::vector<int>{1, 2, 3});
    CHECK(pool.stats().misses == 3);
  }
}

TEST_CASE("pool: a waiter can be cancelled, others keep waiting") {
  asio::io_context io;
  auto r = acquire(io.get_executor(), protocol::udp, port_range::wildcard(1));
  udp_pool pool(io.get_executor(), r, loopback, sizes(0, 1));
  REQUIRE(run_until(io, [&] { return pool.stats().ready == 1; }));
  std::error_code ec;
  auto held = pool.try_get(ec);
  asio::cancellation_signal cancel;
  int cancelled = 0, served = 0;
  std::error_code cancelled_ec;
  pool.async_get(asio::bind_cancellation_slot(cancel.slot(), [&](std::error_code e, pooled_socket<asio::ip::udp> s) {
    ++cancelled;
    cancelled_ec = e;
    CHECK_FALSE(s);
  }));
  pooled_socket<asio::ip::udp> later;
  pool.async_get([&](std::error_code e, pooled_socket<asio::ip::udp> s) {
    ++served;
    CHECK_FALSE(e);
    later = std::move(s);
  });
  io.run_for(std::chrono::milliseconds(20));
  cancel.emit(asio::cancellation_type::all);
  CHECK(run_until(io, [&] { return cancelled == 1; }));
  CHECK(cancelled_ec == condition::aborted);
  CHECK(pool.stats().waiters == 1);
  held = {};
  CHECK(run_until(io, [&] { return served == 1; }));
  CHECK(cancelled == 1);
}

TEST_CASE("pool: close completes every waiter once with aborted") {
  asio::io_context io;
  auto r = acquire(io.get_executor(), protocol::udp, port_range::wildcard(1));
  udp_pool pool(io.get_executor(), r, loopback, sizes(0, 1));
  REQUIRE(run_until(io, [&] { return pool.stats().ready == 1; }));
  std::error_code ec;
  auto held = pool.try_get(ec);
  int calls = 0;
  for (int i = 0; i < 3; ++i) {
    pool.async_get([&](std::error_code e, pooled_socket<asio::ip::udp>) {
      ++calls;
      CHECK(e == condition::aborted);
      CHECK(e == error::pool_closed);
    });
  }
  io.run_for(std::chrono::milliseconds(20));
  pool.close();
  CHECK(run_until(io, [&] { return calls == 3; }));
  pool.async_get([&](std::error_code e, pooled_socket<asio::ip::udp>) {
    ++calls;
    CHECK(e == condition::aborted);
  });
  CHECK(run_until(io, [&] { return calls == 4; }));
  CHECK(held->is_open()); // sockets in use stay usable
  io.run_for(std::chrono::milliseconds(30));
  CHECK(calls == 4);
}

TEST_CASE("pool: more waiters than allowed is exhausted at once") {
  asio::io_context io;
  auto r = acquire(io.get_executor(), protocol::udp, port_range::wildcard(1));
  udp_pool pool(io.get_executor(), r, loopback, sizes(0, 1, 2));
  REQUIRE(run_until(io, [&] { return pool.stats().ready == 1; }));
  std::error_code ec;
  auto held = pool.try_get(ec);
  int waiting = 0;
  std::error_code third;
  for (int i = 0; i < 2; ++i) pool.async_get([&](std::error_code, pooled_socket<asio::ip::udp>) { ++waiting; });
  pool.async_get([&](std::error_code e, pooled_socket<asio::ip::udp>) { third = e; });
  CHECK(run_until(io, [&] { return static_cast<bool>(third); }));
  CHECK(third == condition::exhausted);
  CHECK(third == error::too_many_waiters);
  CHECK(waiting == 0);
  pool.close();
  CHECK(run_until(io, [&] { return waiting == 2; }));
}

TEST_CASE("pool: a pooled TCP socket connects from a port of the block") {
  asio::io_context io;
  PORTRES_FOR_EACH_BACKEND(kind) {
    backend_scope scope(kind, io);
    asio::ip::tcp::acceptor listener(io, {loopback, 0});
    auto r = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(8));
    tcp_pool::options o;
    o.low_water = 1;
    o.high_water = 2;
    o.configure = [](asio::ip::tcp::socket& s, std::error_code& ec) { s.set_option(asio::ip::tcp::no_delay(true), ec); };
    tcp_pool pool(io.get_executor(), r, loopback, o);
    pooled_socket<asio::ip::tcp> client;
    bool got = false;
    pool.async_get([&](std::error_code ec, pooled_socket<asio::ip::tcp> s) {
      CHECK_FALSE(ec);
      client = std::move(s);
      got = true;
    });
    REQUIRE(run_until(io, [&] { return got; }));
    asio::ip::tcp::socket accepted(io);
    bool connected = false, accepted_ok = false;
    listener.async_accept(accepted, [&](std::error_code ec) { accepted_ok = !ec; });
    // Windows' native engine hands out dual-mode IPv6 sockets: the peer in the form they reach it.
    client->async_connect(client.peer_endpoint(listener.local_endpoint()), [&](std::error_code ec) { connected = !ec; });
    REQUIRE(run_until(io, [&] { return connected && accepted_ok; }));
    CHECK(r.range().contains(accepted.remote_endpoint().port()));
    CHECK(accepted.remote_endpoint().port() == client.port());
    asio::ip::tcp::no_delay nd;
    client->get_option(nd);
    CHECK(nd.value());
    // Given back: reused where the OS can (Windows), else closed and replaced.
    const bool reuse = capabilities().socket_reuse;
    client = {};
    REQUIRE(run_until(io, [&] { return pool.stats().in_use == 0; }));
    CHECK(pool.stats().recycled == (reuse ? 1u : 0u));
    if (!reuse) CHECK_FALSE(capabilities().socket_reuse_reason.empty());
  }
}

TEST_CASE("pool: a pooled UDP socket sends from a port of the block") {
  asio::io_context io;
  asio::ip::udp::socket receiver(io, {loopback, 0});
  auto r = acquire(io.get_executor(), protocol::udp, port_range::wildcard(4));
  udp_pool pool(io.get_executor(), r, loopback, sizes(1, 2));
  REQUIRE(run_until(io, [&] { return pool.stats().ready == 2; }));
  std::error_code ec;
  auto s = pool.try_get(ec);
  REQUIRE_FALSE(ec);
  s->send_to(asio::buffer("hi", 2), receiver.local_endpoint());
  char buf[8];
  asio::ip::udp::endpoint from;
  receiver.receive_from(asio::buffer(buf), from);
  CHECK(r.range().contains(from.port()));
}

TEST_CASE("pool: no socket or port is lost over 10,000 get/return cycles") {
  asio::io_context io;
  auto r = acquire(io.get_executor(), protocol::udp, port_range::wildcard(16));
  udp_pool pool(io.get_executor(), r, loopback, sizes(4, 8));
  int cycles = 0;
  std::function<void()> next = [&] {
    pool.async_get([&](std::error_code ec, pooled_socket<asio::ip::udp> s) {
      REQUIRE_FALSE(ec);
      REQUIRE(r.range().contains(s.port()));
      if (++cycles < 10000) next(); // s goes back to the pool here
    });
  };
  next();
  CHECK(run_until(io, [&] { return cycles == 10000; }, std::chrono::seconds(60)));
  io.run_for(std::chrono::milliseconds(20));
  const auto stats = pool.stats();
  CHECK(stats.in_use == 0);
  CHECK(stats.hits + stats.misses == 10000);
  CHECK(stats.refills == stats.ready + 10000); // every socket handed out was replaced once
  CHECK(stats.creation_failures == 0);
  CHECK(stats.exhausted_events == 0);
  // With the stock closed, every port of the block can be held at once again.
  pool.close();
  std::vector<asio::ip::udp::socket> all;
  for (int i = 0; i < 16; ++i) {
    all.emplace_back(io, asio::ip::udp::v4());
    associate(all.back(), r.token());
    portres::bind(all.back(), loopback);
  }
  CHECK(all.size() == 16);
}

TEST_CASE("pool: stress from several threads keeps the counts balanced") {
  asio::io_context io;
  auto r = acquire(io.get_executor(), protocol::udp, port_range::wildcard(8));
  udp_pool pool(io.get_executor(), r, loopback, sizes(2, 4, 4096));
  constexpr int total = 2000;
  std::atomic<int> done{0}, failures{0};
  for (int i = 0; i < total; ++i) {
    pool.async_get([&](std::error_code ec, pooled_socket<asio::ip::udp> s) {
      if (ec || !r.range().contains(s.port())) ++failures;
      ++done;
    });
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (done < total && std::chrono::steady_clock::now() < deadline) io.run_for(std::chrono::milliseconds(10));
    });
  }
  for (auto& t : threads) t.join();
  CHECK(done == total);
  CHECK(failures == 0);
  const auto stats = pool.stats();
  CHECK(stats.in_use == 0);
  CHECK(stats.waiters == 0);
  CHECK(stats.hits + stats.misses == total);
}

TEST_CASE("pool: 10x oversubscribed on a multi-threaded io_context serves waiters in order") {
  asio::io_context io;
  auto r = acquire(io.get_executor(), protocol::udp, port_range::wildcard(4));
  // The pool runs on a strand of a 4-thread io_context: completions are
  // posted to it in the order the pool hands sockets out, and handlers bound
  // to the same strand run in that order.
  auto strand = asio::make_strand(io);
  udp_pool pool(strand, r, loopback, sizes(0, 4, 64));
  REQUIRE(run_until(io, [&] { return pool.stats().ready == 4; }));
  std::error_code ec;
  std::vector<pooled_socket<asio::ip::udp>> held;
  for (int i = 0; i < 4; ++i) held.push_back(pool.try_get(ec));
  // 40 waiters for 4 ports.
  std::vector<int> order;
  std::atomic<int> done{0};
  for (int i = 0; i < 40; ++i) {
    pool.async_get(asio::bind_executor(strand, [&, i](std::error_code e, pooled_socket<asio::ip::udp> s) {
      CHECK_FALSE(e);
      order.push_back(i);
      ++done;
      // Return the socket from another thread of the io_context, a little later.
      asio::post(io, [s = std::move(s)]() mutable { s = {}; });
    }));
  }
  io.restart();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      while (done < 40 && std::chrono::steady_clock::now() < deadline) io.run_for(std::chrono::milliseconds(5));
    });
  }
  held.clear(); // the first four come back: the chain starts
  for (auto& t : threads) t.join();
  REQUIRE(done == 40);
  std::vector<int> expected(40);
  std::iota(expected.begin(), expected.end(), 0);
  CHECK(order == expected);
  run_until(io, [&] { return pool.stats().in_use == 0; });
  const auto stats = pool.stats();
  CHECK(stats.in_use == 0);
  CHECK(stats.waiters == 0);
  CHECK(stats.hits + stats.misses == 44);
}
