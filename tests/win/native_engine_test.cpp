// The Windows engine: the real overlapped IOCTL path under Wine (which
// answers "not supported"), and the success, pending, abort and error paths
// against the simulated provider.
#include "win/simulated_provider.hpp"

#include "conformance.hpp"
#include "portres/portres.hpp"
#include "support.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

using namespace portres;
using portres_test::native_selected;
using portres_test::simulated_provider;

namespace {
bool under_wine() { return capabilities().platform.rfind("Wine", 0) == 0; }

} // namespace

TEST_CASE("capabilities under Wine: native runtime off, fallback chosen automatically") {
  if (!under_wine()) {
    PORTRES_SKIP("not running under Wine");
  }
  const auto caps = capabilities();
  CHECK_FALSE(caps.native_runtime);
  CHECK(caps.native_runtime_reason.find("Wine") != std::string::npos);
  CHECK_FALSE(caps.persistent);
  CHECK(caps.persistent_reason.find("CreatePersistentTcpPortReservation") != std::string::npos);
  select_backend(backend_kind::automatic);
  CHECK(active_backend() == backend_kind::fallback);
}

TEST_CASE("real IOCP path under Wine: every native operation completes once with not_supported") {
  if (!under_wine()) {
    PORTRES_SKIP("not running under Wine");
  }
  asio::io_context io;
  native_selected native;

  int acquired = 0;
  std::error_code acquire_ec;
  async_acquire(io.get_executor(), protocol::tcp, port_range::wildcard(20), [&](std::error_code ec, runtime_reservation r) {
    ++acquired;
    acquire_ec = ec;
    CHECK_FALSE(r);
  });
  CHECK(portres_test::run_until(io, [&] { return acquired == 1; }));
  CHECK(acquire_ec == condition::not_supported);

  asio::ip::tcp::socket socket(io, asio::ip::tcp::v4());
  int associated = 0;
  std::error_code associate_ec;
  async_associate(socket, reservation_token{42}, [&](std::error_code ec) {
    ++associated;
    associate_ec = ec;
  });
  CHECK(portres_test::run_until(io, [&] { return associated == 1; }));
  CHECK(associate_ec == condition::not_supported);

  std::error_code ec;
  acquire(io.get_executor(), protocol::udp, port_range::wildcard(4), ec);
  CHECK(ec == condition::not_supported);

  // A reservation obtained from the simulated provider, released through the real one.
  runtime_reservation held;
  {
    simulated_provider provider(io);
    held = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(4));
  }
  int released = 0;
  std::error_code release_ec;
  held.async_release([&](std::error_code e) {
    ++released;
    release_ec = e;
  });
  CHECK(portres_test::run_until(io, [&] { return released == 1; }));
  CHECK(release_ec == condition::not_supported);
  io.run_for(std::chrono::milliseconds(50));
  CHECK(acquired == 1);
  CHECK(associated == 1);
  CHECK(released == 1);
}

TEST_CASE("persistent reservations under Wine: not supported, no crash") {
  if (!under_wine()) {
    PORTRES_SKIP("not running under Wine");
  }
  std::error_code ec;
  persistent::create(protocol::tcp, {50000, 10}, ec);
  CHECK(ec == condition::not_supported);
  persistent::lookup(protocol::udp, {50000, 10}, ec);
  CHECK(ec == condition::not_supported);
  persistent::remove(protocol::tcp, {50000, 10}, ec);
  CHECK(ec == condition::not_supported);
  persistent::list(protocol::tcp, ec);
  CHECK(ec == condition::not_supported);
  persistent::create(protocol::tcp, port_range::wildcard(10), ec);
  CHECK(ec == error::wildcard_not_allowed);
}

TEST_CASE("simulated provider: completions delivered later complete the handler once") {
  asio::io_context io;
  simulated_provider provider(io);
  native_selected native;
  provider.set_mode(simulated_provider::completion_mode::pending);
  int calls = 0;
  runtime_reservation got;
  async_acquire(io.get_executor(), protocol::tcp, port_range::wildcard(20), [&](std::error_code ec, runtime_reservation r) {
    ++calls;
    CHECK_FALSE(ec);
    got = std::move(r);
  });
  io.run_for(std::chrono::milliseconds(50));
  CHECK(calls == 0); // still pending at the provider
  CHECK(provider.deliver_pending() == 1);
  CHECK(portres_test::run_until(io, [&] { return calls == 1; }));
  REQUIRE(got);
  CHECK(got.range().count() == 20);
  CHECK(got.range().first() >= 50000);
}

TEST_CASE("simulated provider: a specific block round-trips in wire byte order") {
  asio::io_context io;
  simulated_provider provider(io);
  native_selected native;
  auto r = acquire(io.get_executor(), protocol::udp, port_range{51234, 7});
  CHECK(r.range() == port_range{51234, 7});
  std::error_code ec;
  auto clash = acquire(io.get_executor(), protocol::udp, port_range{51230, 7}, ec);
  CHECK(ec == condition::in_use);
}

TEST_CASE("simulated provider: persistent tokens need administrator rights") {
  asio::io_context io;
  simulated_provider provider(io);
  native_selected native;
  const reservation_token persistent_token{0x5150};
  provider.add_persistent(protocol::tcp, {52000, 10}, persistent_token);
  provider.set_administrator(false);
  asio::ip::tcp::socket socket(io, asio::ip::tcp::v4());
  std::error_code ec;
  associate(socket, persistent_token, ec);
  CHECK(ec == condition::access_denied);
  provider.set_administrator(true);
  associate(socket, persistent_token, ec);
  CHECK_FALSE(ec);
  const auto port = portres::bind(socket);
  CHECK((port >= 52000 && port < 52010));
}

TEST_CASE("a pending operation completes exactly once with aborted when its socket is closed") {
  asio::io_context io;
  simulated_provider provider(io);
  native_selected native;
  auto r = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(4));
  provider.set_mode(simulated_provider::completion_mode::hang);
  asio::ip::tcp::socket socket(io, asio::ip::tcp::v4());
  int calls = 0;
  std::error_code result;
  async_associate(socket, r.token(), [&](std::error_code ec) {
    ++calls;
    result = ec;
  });
  io.run_for(std::chrono::milliseconds(50));
  CHECK(calls == 0);
  socket.close();
  CHECK(portres_test::run_until(io, [&] { return calls == 1; }));
  CHECK(result == condition::aborted); // 995 on Windows, 676 under Wine
  io.run_for(std::chrono::milliseconds(50));
  CHECK(calls == 1);
}

TEST_CASE("a pending operation completes exactly once with aborted when cancelled") {
  asio::io_context io;
  simulated_provider provider(io);
  native_selected native;
  provider.set_mode(simulated_provider::completion_mode::hang);
  asio::cancellation_signal cancel;
  int calls = 0;
  std::error_code result;
  async_acquire(io.get_executor(), protocol::udp, port_range::wildcard(4),
                asio::bind_cancellation_slot(cancel.slot(), [&](std::error_code ec, runtime_reservation r) {
                  ++calls;
                  result = ec;
                  CHECK_FALSE(r);
                }));
  io.run_for(std::chrono::milliseconds(50));
  CHECK(calls == 0);
  cancel.emit(asio::cancellation_type::all);
  CHECK(portres_test::run_until(io, [&] { return calls == 1; }));
  CHECK(result == condition::aborted);
  io.run_for(std::chrono::milliseconds(50));
  CHECK(calls == 1);
}

// On Windows an IOCTL that succeeds at once still queues a packet on the
// completion port, and an io_context destroyed first dequeues and destroys
// it. The simulated provider must model that packet: when it queued its
// success as a posted function instead, an io_context destroyed before that
// function ran dropped it, the released overlapped operation was never
// completed nor destroyed, and Asio's shutdown waited for its outstanding
// work forever (the pool test "waiters are served first-come first-served"
// hung in ~io_context whenever its last refill's associate was still queued).
TEST_CASE("an io_context destroyed while an immediate IOCTL success is still queued is destroyed at once") {
  int calls = 0;
  {
    asio::io_context io;
    simulated_provider provider(io);
    native_selected native;
    auto r = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(4));
    asio::ip::tcp::socket socket(io, asio::ip::tcp::v4());
    async_associate(socket, r.token(), [&](std::error_code) { ++calls; });
  } // never run: the success is still queued
  CHECK(calls == 0); // destroyed uninvoked, as Asio does with every queued handler
}

TEST_CASE("simulated provider: calls it still holds back complete with aborted when it goes, as closed sockets' I/O does") {
  asio::io_context io;
  native_selected native;
  int calls = 0;
  std::error_code result;
  runtime_reservation r;
  asio::ip::tcp::socket socket(io, asio::ip::tcp::v4());
  {
    simulated_provider provider(io);
    r = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(4));
    provider.set_mode(simulated_provider::completion_mode::pending);
    async_associate(socket, r.token(), [&](std::error_code ec) {
      ++calls;
      result = ec;
    });
    io.run_for(std::chrono::milliseconds(20));
    CHECK(calls == 0);
  }
  CHECK(portres_test::run_until(io, [&] { return calls == 1; }));
  CHECK(result == condition::aborted);
}
