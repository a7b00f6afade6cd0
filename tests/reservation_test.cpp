#include "portres/reservation.hpp"

#include "conformance.hpp"
#include "support.hpp"

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

using namespace portres;
using portres_test::backend_scope;

TEST_CASE("acquire a wildcard block, release it, and release again") {
  asio::io_context io;
  PORTRES_FOR_EACH_BACKEND(kind) {
    backend_scope scope(kind, io);
    auto r = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(20));
    REQUIRE(r);
    CHECK(r.protocol() == protocol::tcp);
    CHECK(r.range().count() == 20);
    CHECK_FALSE(r.range().is_wildcard());
    CHECK(r.range().first() >= 49152);
    CHECK(r.token());
    std::error_code ec;
    r.release(ec);
    CHECK_FALSE(ec);
    CHECK_FALSE(r);
    r.release(ec);
    CHECK(ec == error::already_released);
    CHECK_THROWS_AS(r.release(), std::system_error);
  }
}

TEST_CASE("two live reservations never overlap and release frees the block") {
  asio::io_context io;
  PORTRES_FOR_EACH_BACKEND(kind) {
    backend_scope scope(kind, io);
    auto a = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(16));
    auto b = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(16));
    CHECK_FALSE(a.range().overlaps(b.range()));
    CHECK(a.token() != b.token());

    // The same specific block while it is held: in use.
    std::error_code ec;
    auto again = acquire(io.get_executor(), protocol::tcp, a.range(), ec);
    CHECK(ec == condition::in_use);
    CHECK_FALSE(again);

    // A UDP block may cover the same ports: reservations are per protocol.
    auto udp = acquire(io.get_executor(), protocol::udp, a.range(), ec);
    CHECK_FALSE(ec);

    const auto block = a.range();
    a.release();
    auto c = acquire(io.get_executor(), protocol::tcp, block, ec);
    CHECK_FALSE(ec);
    CHECK(c.range() == block);
  }
}

TEST_CASE("destroying a reservation releases it") {
  asio::io_context io;
  PORTRES_FOR_EACH_BACKEND(kind) {
    backend_scope scope(kind, io);
    port_range block;
    {
      auto r = acquire(io.get_executor(), protocol::udp, port_range::wildcard(8));
      block = r.range();
    }
    std::error_code ec;
    auto again = acquire(io.get_executor(), protocol::udp, block, ec);
    CHECK_FALSE(ec);
  }
}

TEST_CASE("a specific block with a bound port is in use, and the message names the port") {
  asio::io_context io;
  PORTRES_FOR_EACH_BACKEND(kind) {
    backend_scope scope(kind, io);
    if (!portres_test::portable_port_choice()) {
      std::printf("N/A for %s: the simulated provider does not see real sockets\n", portres::to_string(kind));
      continue;
    }
    auto probe = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(5));
    const auto block = probe.range();
    probe.release();
    asio::ip::tcp::acceptor squatter(io, {asio::ip::address_v4::loopback(), static_cast<unsigned short>(block.first() + 2)});
    std::error_code ec;
    auto r = acquire(io.get_executor(), protocol::tcp, block, ec);
    CHECK(ec == condition::in_use);
    CHECK(ec.message().find(std::to_string(block.first() + 2)) != std::string::npos);
  }
}

TEST_CASE("invalid ranges are rejected before anything starts") {
  asio::io_context io;
  std::error_code ec;
  auto r = acquire(io.get_executor(), protocol::tcp, port_range(5000, 0), ec);
  CHECK(ec == error::zero_count);
  CHECK_FALSE(r);
  r = acquire(io.get_executor(), protocol::tcp, port_range(65000, 1000), ec);
  CHECK(ec == error::range_past_end);
  CHECK_THROWS_AS(acquire(io.get_executor(), protocol::tcp, port_range::wildcard(0)), std::system_error);
}

TEST_CASE("async_acquire delivers an early error through the executor, once") {
  asio::io_context io;
  int calls = 0;
  std::error_code result;
  async_acquire(io.get_executor(), protocol::tcp, port_range(5000, 0), [&](std::error_code ec, runtime_reservation r) {
    ++calls;
    result = ec;
    CHECK_FALSE(r);
  });
  CHECK(calls == 0); // never inline
  io.run();
  CHECK(calls == 1);
  CHECK(result == error::zero_count);
}

TEST_CASE("async_acquire and async_release complete once each") {
  asio::io_context io;
  PORTRES_FOR_EACH_BACKEND(kind) {
    backend_scope scope(kind, io);
    int acquired = 0, released = 0;
    runtime_reservation held;
    async_acquire(io.get_executor(), protocol::udp, port_range::wildcard(4), [&](std::error_code ec, runtime_reservation r) {
      ++acquired;
      CHECK_FALSE(ec);
      held = std::move(r);
    });
    CHECK(portres_test::run_until(io, [&] { return acquired == 1; }));
    REQUIRE(held);
    held.async_release([&](std::error_code ec) {
      ++released;
      CHECK_FALSE(ec);
    });
    CHECK_FALSE(held);
    CHECK(portres_test::run_until(io, [&] { return released == 1; }));
    // Releasing an empty reservation fails, also asynchronously.
    std::error_code second;
    held.async_release([&](std::error_code ec) {
      ++released;
      second = ec;
    });
    CHECK(portres_test::run_until(io, [&] { return released == 2; }));
    CHECK(second == error::already_released);
    CHECK(acquired == 1);
  }
}
