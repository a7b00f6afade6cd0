// What the engine does under each answer the OS may give where the
// reference pages are silent. The simulated provider follows one answer by
// default (its ASSUMPTIONS, each measured on real Windows by a `portres
// selftest` check) and can give the other; the engine must be right, or say
// clearly what went wrong, under both.
#include "win/simulated_provider.hpp"

#include "os_trace.hpp"
#include "portres/portres.hpp"
#include "portres/socket_pool.hpp"
#include "support.hpp"

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/udp.hpp>

#include <gsl/gsl>

#include <string_view>

#include <winsock2.h>
#include <windows.h>

using namespace portres;
using portres_test::native_selected;
using portres_test::run_until;
using portres_test::simulated_provider;

namespace {
std::error_code wsa(int code) { return {code, std::system_category()}; }

int family_of(asio::ip::tcp::socket& s) {
  WSAPROTOCOL_INFOW info{};
  int size = sizeof info;
  REQUIRE(::getsockopt(static_cast<SOCKET>(s.native_handle()), SOL_SOCKET, SO_PROTOCOL_INFOW,
                       reinterpret_cast<char*>(&info), &size) == 0);
  return info.iAddressFamily;
}
} // namespace

// Assumption: an AF_INET socket associates with a block acquired on a
// dual-mode AF_INET6 socket (selftest probe_ipv4_on_dual_mode). The pool does
// not depend on it: its sockets are dual-mode AF_INET6, bound to the
// v4-mapped form of an IPv4 local address, as MsQuic opens its sockets.
TEST_CASE("pool sockets are dual-mode IPv6, so an IPv4 pool works even where AF_INET sockets are refused") {
  asio::io_context io;
  simulated_provider provider(io);
  native_selected native;
  provider.set_ipv4_sockets_refused(true);
  auto r = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(4));
  asio::ip::tcp::socket v4(io, asio::ip::tcp::v4());
  std::error_code ec;
  associate(v4, r.token(), ec);
  CHECK(ec == wsa(WSAEINVAL)); // the other answer, reported as the OS gives it

  socket_pool<asio::ip::tcp>::options o;
  o.low_water = 0;
  o.high_water = 2;
  socket_pool<asio::ip::tcp> pool(io.get_executor(), r, asio::ip::address_v4::loopback(), o);
  REQUIRE(run_until(io, [&] { return pool.stats().ready == 2 || pool.stats().creation_failures > 0; }));
  CHECK(pool.stats().creation_failures == 0);
  asio::ip::tcp::acceptor listener(io, {asio::ip::address_v4::loopback(), 0});
  asio::ip::tcp::socket peer(io);
  int accepted = 0;
  listener.async_accept(peer, [&](std::error_code e) {
    ++accepted;
    CHECK_FALSE(e);
  });
  int calls = 0;
  pooled_socket<asio::ip::tcp> connected;
  pool.async_connect(listener.local_endpoint(), [&](std::error_code e, pooled_socket<asio::ip::tcp> s) {
    ++calls;
    CHECK_FALSE(e);
    connected = std::move(s);
  });
  CHECK(run_until(io, [&] { return calls == 1 && accepted == 1; }));
  REQUIRE(connected);
  CHECK(family_of(connected.socket()) == AF_INET6);
  const auto local = connected->local_endpoint();
  CHECK(local.address() == asio::ip::address(asio::ip::make_address_v6(asio::ip::v4_mapped, asio::ip::address_v4::loopback())));
  CHECK(r.range().contains(local.port()));
  CHECK(peer.remote_endpoint().port() == local.port());
}

// Assumption: the packet of an IOCTL that succeeded at once is dequeued
// after the engine handed the operation over. Under the other order (an io
// thread dequeued it first) Asio parks it: every operation still completes once.
TEST_CASE("an immediate success dequeued before the engine handed the operation over completes it once") {
  asio::io_context io;
  simulated_provider provider(io);
  native_selected native;
  provider.set_mode(simulated_provider::completion_mode::immediate_dequeued_first);
  int acquired = 0, associated = 0, released = 0;
  runtime_reservation r;
  async_acquire(io.get_executor(), protocol::udp, port_range::wildcard(2), [&](std::error_code ec, runtime_reservation x) {
    ++acquired;
    CHECK_FALSE(ec);
    r = std::move(x);
  });
  CHECK(run_until(io, [&] { return acquired == 1; }));
  REQUIRE(r);
  asio::ip::udp::socket s(io, asio::ip::udp::v6());
  async_associate(s, r.token(), [&](std::error_code ec) {
    ++associated;
    CHECK_FALSE(ec);
  });
  CHECK(run_until(io, [&] { return associated == 1; }));
  CHECK(r.range().contains(portres::bind(s)));
  r.async_release([&](std::error_code ec) {
    ++released;
    CHECK_FALSE(ec);
  });
  CHECK(run_until(io, [&] { return released == 1; }));
  io.run_for(std::chrono::milliseconds(30));
  CHECK((acquired == 1 && associated == 1 && released == 1));
}

// Assumption: a bind finding no free port of the block fails with
// WSAEADDRINUSE (selftest exhausted_21st reports the code Windows gives).
TEST_CASE("a used-up block is exhausted, naming the block, whichever code the OS answers, and the code is recorded") {
  asio::io_context io;
  simulated_provider provider(io);
  native_selected native;
  detail::os_trace::enable(true);
  auto off = gsl::finally([] { detail::os_trace::enable(false); });
  for (const int code : {WSAEADDRINUSE, WSAENOBUFS, WSAEACCES}) {
    CAPTURE(code);
    provider.set_exhausted_bind_error(code);
    auto r = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(1));
    asio::ip::tcp::socket first(io, asio::ip::tcp::v6());
    associate(first, r.token());
    portres::bind(first);
    asio::ip::tcp::socket second(io, asio::ip::tcp::v6());
    associate(second, r.token());
    const auto mark = detail::os_trace::mark();
    std::error_code ec;
    CHECK(portres::bind(second, ec) == 0);
    CHECK(ec == condition::exhausted);
    CHECK(ec.message().find(std::to_string(r.range().first())) != std::string::npos);
    const auto calls = detail::os_trace::since(mark);
    REQUIRE(calls.size() == 1);
    CHECK(std::string_view(calls[0].what) == "bind");
    CHECK(calls[0].immediate == code);
    CHECK(calls[0].result == ec);
  }
}

// Assumption: a failed bind leaves the socket associated, so a retry binds
// inside the block (selftest probe_failed_bind_keeps_association). If the OS
// drops the association instead, the retry lands outside the block: the
// engine says so (bad_response) instead of passing it off as a port of the block.
TEST_CASE("a retried bind after the OS dropped the association is reported, not passed off as the block's") {
  asio::io_context io;
  simulated_provider provider(io);
  native_selected native;
  provider.set_failed_bind_keeps_association(false);
  auto r = acquire(io.get_executor(), protocol::udp, port_range::wildcard(1));
  asio::ip::udp::socket first(io, asio::ip::udp::v6());
  associate(first, r.token());
  portres::bind(first);
  asio::ip::udp::socket second(io, asio::ip::udp::v6());
  associate(second, r.token());
  std::error_code ec;
  portres::bind(second, ec);
  CHECK(ec == condition::exhausted);
  first.close();
  portres::bind(second, ec);
  CHECK(ec == error::bad_response);
}
