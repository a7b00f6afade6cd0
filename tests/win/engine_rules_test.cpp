// The Windows engine against the simulated provider: the exact error of each
// documented case, what a failed bind leaves behind, the association tag,
// lifetimes, per-operation cancellation, IPv6, and the persistent functions
// faked at the GetProcAddress seam. Each expectation names the reference page
// (docs in /work/shared/reference) or the NTSTATUS table it follows.
#include "win/simulated_provider.hpp"

#include "portres/portres.hpp"
#include "support.hpp"
#include "win/native_engine.hpp"
#include "win/winsock_seam.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/udp.hpp>

#include <gsl/gsl>

#include <optional>
#include <vector>

#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>

using namespace portres;
using portres_test::native_selected;
using portres_test::simulated_provider;

namespace {

std::error_code wsa(int code) { return {code, std::system_category()}; }

} // namespace

TEST_CASE("immediate failures complete once through the executor with the documented code") {
  asio::io_context io;
  simulated_provider provider(io);
  native_selected native;
  // Reference 001 (SIO_ASSOCIATE_PORT_RESERVATION): an unacceptable input,
  // here a token no reservation has, is WSAEINVAL.
  asio::ip::tcp::socket socket(io, asio::ip::tcp::v4());
  int calls = 0;
  std::error_code result;
  async_associate(socket, reservation_token{0x7777}, [&](std::error_code ec) {
    ++calls;
    result = ec;
  });
  CHECK(calls == 0); // never inline
  CHECK(portres_test::run_until(io, [&] { return calls == 1; }));
  CHECK(result == wsa(WSAEINVAL));
  // Reference 001: a persistent token without administrator rights is WSAEACCES.
  provider.add_persistent(protocol::tcp, {52100, 4}, reservation_token{0x5151});
  provider.set_administrator(false);
  async_associate(socket, reservation_token{0x5151}, [&](std::error_code ec) {
    ++calls;
    result = ec;
  });
  CHECK(portres_test::run_until(io, [&] { return calls == 2; }));
  CHECK(result == wsa(WSAEACCES));
  io.run_for(std::chrono::milliseconds(20));
  CHECK(calls == 2);
}

TEST_CASE("bind: a bad local address is not an exhausted block, and the association survives for a retry") {
  asio::io_context io;
  simulated_provider provider(io);
  native_selected native;
  auto r = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(4));
  asio::ip::tcp::socket socket(io, asio::ip::tcp::v4());
  associate(socket, r.token());
  std::error_code ec;
  const auto foreign = asio::ip::make_address("192.0.2.7"); // TEST-NET-1: never this machine's
  CHECK(portres::bind(socket, foreign, ec) == 0);
  CHECK(ec == wsa(WSAEADDRNOTAVAIL));
  CHECK(ec == condition::invalid_argument);
  CHECK(ec != condition::exhausted);
  CHECK(socket.local_endpoint(ec).port() == 0); // still unbound
  const auto port = portres::bind(socket, ec);
  CHECK_FALSE(ec);
  CHECK(r.range().contains(port));
}

TEST_CASE("bind: an exhausted block names the block and stays retryable") {
  asio::io_context io;
  simulated_provider provider(io);
  native_selected native;
  auto r = acquire(io.get_executor(), protocol::udp, port_range::wildcard(1));
  asio::ip::udp::socket first(io, asio::ip::udp::v4());
  associate(first, r.token());
  CHECK(r.range().contains(portres::bind(first)));
  asio::ip::udp::socket second(io, asio::ip::udp::v4());
  associate(second, r.token());
  std::error_code ec;
  CHECK(portres::bind(second, ec) == 0);
  CHECK(ec == condition::exhausted);
  CHECK(ec.message().find(std::to_string(r.range().first())) != std::string::npos);
  first.close(); // the block's only port is free again
  const auto port = portres::bind(second, ec);
  CHECK_FALSE(ec);
  CHECK(port == r.range().first());
}

TEST_CASE("a reservation that dies in its destructor leaves the live table, and bind says already_released") {
  asio::io_context io;
  simulated_provider provider(io);
  native_selected native;
  const auto before = detail::win::live_runtime_tokens();
  asio::ip::tcp::socket socket(io, asio::ip::tcp::v4());
  {
    auto r = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(4));
    CHECK(detail::win::live_runtime_tokens() == before + 1);
    associate(socket, r.token());
  } // destroyed, never released
  CHECK(detail::win::live_runtime_tokens() == before);
  std::error_code ec;
  CHECK(portres::bind(socket, ec) == 0);
  CHECK(ec == error::already_released);
  CHECK(socket.local_endpoint(ec).port() == 0); // not bound to a port outside the block
}

TEST_CASE("the acquiring socket is not inheritable and is a dual-mode IPv6 socket") {
  asio::io_context io;
  simulated_provider provider(io);
  native_selected native;
  auto r = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(4));
  const auto s = static_cast<SOCKET>(provider.last_acquiring_socket());
  REQUIRE(s != INVALID_SOCKET);
  DWORD flags = 0;
  REQUIRE(::GetHandleInformation(reinterpret_cast<HANDLE>(s), &flags));
  CHECK((flags & HANDLE_FLAG_INHERIT) == 0);
  WSAPROTOCOL_INFOW info{};
  int size = sizeof info;
  REQUIRE(::getsockopt(s, SOL_SOCKET, SO_PROTOCOL_INFOW, reinterpret_cast<char*>(&info), &size) == 0);
  CHECK(info.iAddressFamily == AF_INET6);
  DWORD v6_only = 1;
  size = sizeof v6_only;
  REQUIRE(::getsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, reinterpret_cast<char*>(&v6_only), &size) == 0);
  CHECK(v6_only == 0);
}

namespace {
SOCKET WSAAPI open_without_ipv6(int family, int type, int protocol, LPWSAPROTOCOL_INFOW info, GROUP group, DWORD flags) {
  if (family == AF_INET6) {
    ::WSASetLastError(WSAEAFNOSUPPORT);
    return INVALID_SOCKET;
  }
  return ::WSASocketW(family, type, protocol, info, group, flags);
}
} // namespace

TEST_CASE("without IPv6 the acquiring socket is IPv4, still not inheritable") {
  asio::io_context io;
  simulated_provider provider(io);
  native_selected native;
  detail::win::seam().open = open_without_ipv6;
  auto restore = gsl::finally([] { detail::win::seam().open = ::WSASocketW; });
  auto r = acquire(io.get_executor(), protocol::udp, port_range::wildcard(4));
  const auto s = static_cast<SOCKET>(provider.last_acquiring_socket());
  WSAPROTOCOL_INFOW info{};
  int size = sizeof info;
  REQUIRE(::getsockopt(s, SOL_SOCKET, SO_PROTOCOL_INFOW, reinterpret_cast<char*>(&info), &size) == 0);
  CHECK(info.iAddressFamily == AF_INET);
  DWORD flags = 0;
  REQUIRE(::GetHandleInformation(reinterpret_cast<HANDLE>(s), &flags));
  CHECK((flags & HANDLE_FLAG_INHERIT) == 0);
  asio::ip::udp::socket v4(io, asio::ip::udp::v4());
  associate(v4, r.token());
  CHECK(r.range().contains(portres::bind(v4)));
}

namespace {
int WSAAPI refuse_dual_mode(SOCKET s, int level, int name, const char* value, int size) {
  if (level == IPPROTO_IPV6 && name == IPV6_V6ONLY) {
    ::WSASetLastError(WSAEINVAL);
    return SOCKET_ERROR;
  }
  return ::setsockopt(s, level, name, value, size);
}
} // namespace

// An AF_INET6 socket left IPv6-only would acquire a block that (if blocks
// serve their acquiring socket's families) no IPv4 socket could use: when
// IPV6_V6ONLY cannot be turned off, the block is acquired on an IPv4 socket.
TEST_CASE("the acquiring socket is IPv4 when IPV6_V6ONLY cannot be turned off") {
  asio::io_context io;
  simulated_provider provider(io);
  native_selected native;
  detail::win::seam().set_option = refuse_dual_mode;
  auto restore = gsl::finally([] { detail::win::seam().set_option = ::setsockopt; });
  auto r = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(4));
  const auto s = static_cast<SOCKET>(provider.last_acquiring_socket());
  WSAPROTOCOL_INFOW info{};
  int size = sizeof info;
  REQUIRE(::getsockopt(s, SOL_SOCKET, SO_PROTOCOL_INFOW, reinterpret_cast<char*>(&info), &size) == 0);
  CHECK(info.iAddressFamily == AF_INET);
  asio::ip::tcp::socket v4(io, asio::ip::tcp::v4());
  associate(v4, r.token());
  CHECK(r.range().contains(portres::bind(v4)));
}

// What the engine decides: the block is acquired on a dual-mode IPv6 socket
// (queried from the real socket under Wine), and bind gives each family its
// own wildcard address. The simulated provider lets a block serve only the
// families its acquiring socket can bind (its stated assumption: the pages
// are silent on families), so an engine that acquired on an IPv4 socket, or
// left IPV6_V6ONLY on, fails here.
TEST_CASE("IPv6: a block acquired on a dual-mode socket serves IPv6 and IPv4 sockets on distinct ports") {
  asio::io_context io;
  simulated_provider provider(io);
  native_selected native;
  auto r = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(2));
  const auto acquiring = static_cast<SOCKET>(provider.last_acquiring_socket());
  WSAPROTOCOL_INFOW info{};
  int size = sizeof info;
  REQUIRE(::getsockopt(acquiring, SOL_SOCKET, SO_PROTOCOL_INFOW, reinterpret_cast<char*>(&info), &size) == 0);
  CHECK(info.iAddressFamily == AF_INET6);
  DWORD v6_only = 1;
  size = sizeof v6_only;
  CHECK(::getsockopt(acquiring, IPPROTO_IPV6, IPV6_V6ONLY, reinterpret_cast<char*>(&v6_only), &size) == 0);
  CHECK(v6_only == 0);

  asio::ip::tcp::socket v6(io, asio::ip::tcp::v6());
  std::error_code ec;
  associate(v6, r.token(), ec);
  REQUIRE_FALSE(ec);
  const auto port6 = portres::bind(v6, ec); // no address: the engine picks the family's wildcard
  REQUIRE_FALSE(ec);
  CHECK(r.range().contains(port6));
  CHECK(v6.local_endpoint().address() == asio::ip::address(asio::ip::address_v6::any()));

  asio::ip::tcp::socket v4(io, asio::ip::tcp::v4());
  associate(v4, r.token(), ec);
  REQUIRE_FALSE(ec);
  const auto port4 = portres::bind(v4, ec);
  REQUIRE_FALSE(ec);
  CHECK(r.range().contains(port4));
  CHECK(v4.local_endpoint().address() == asio::ip::address(asio::ip::address_v4::any()));
  CHECK(port4 != port6); // one block, one port space

  asio::ip::tcp::socket third(io, asio::ip::tcp::v6());
  associate(third, r.token());
  portres::bind(third, asio::ip::address_v6::loopback(), ec);
  CHECK(ec == condition::exhausted);
}

namespace {
// Opens sockets until one gets `value` (a freed handle value); null if none
// of a few does. The others stay open meanwhile so each try gets a new value.
std::optional<asio::ip::tcp::socket> socket_with_handle(asio::io_context& io, SOCKET value) {
  std::vector<asio::ip::tcp::socket> others;
  for (int i = 0; i < 32; ++i) {
    asio::ip::tcp::socket s(io, asio::ip::tcp::v4());
    if (static_cast<SOCKET>(s.native_handle()) == value) return std::optional<asio::ip::tcp::socket>(std::move(s));
    others.push_back(std::move(s));
  }
  return std::nullopt;
}

DWORD receive_timeout(asio::ip::tcp::socket& s) {
  DWORD value = 0;
  int size = sizeof value;
  REQUIRE(::getsockopt(static_cast<SOCKET>(s.native_handle()), SOL_SOCKET, SO_RCVTIMEO, reinterpret_cast<char*>(&value),
                       &size) == 0);
  return value;
}
} // namespace

TEST_CASE("a reused handle value is not taken for the closed socket's association: nothing is bound") {
  asio::io_context io;
  simulated_provider provider(io);
  native_selected native;
  auto r = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(4));
  asio::ip::tcp::socket first(io, asio::ip::tcp::v4());
  associate(first, r.token());
  const auto value = static_cast<SOCKET>(first.native_handle());
  first.close(); // associated, never bound
  provider.socket_closed(value); // the OS drops its association with it
  auto reused = socket_with_handle(io, value);
  if (!reused) {
    PORTRES_SKIP("no new socket got the closed socket's handle value in 32 tries");
  }
  std::error_code ec;
  CHECK(portres::bind(*reused, ec) == 0);
  CHECK(ec == error::not_associated);
  CHECK(reused->local_endpoint(ec).port() == 0); // not bound to an ephemeral port outside the block
  // Associated for real, the same socket binds inside the block.
  associate(*reused, r.token());
  CHECK(r.range().contains(portres::bind(*reused)));
}

// The tag goes on before the associate IOCTL is issued, and only the
// association that wrote it confirms or removes it: a socket closed while its
// associate was under way, whose handle value a new socket got before the
// completion arrived, must not have the old association (and a 12-day
// receive timeout) written onto the new one.
TEST_CASE("an associate completing after its socket was closed and the handle value reused leaves the new socket alone") {
  asio::io_context io;
  simulated_provider provider(io);
  native_selected native;
  auto r = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(4));
  provider.set_mode(simulated_provider::completion_mode::pending);
  asio::ip::tcp::socket first(io, asio::ip::tcp::v4());
  int calls = 0;
  async_associate(first, r.token(), [&](std::error_code) { ++calls; });
  io.run_for(std::chrono::milliseconds(20));
  const auto value = static_cast<SOCKET>(first.native_handle());
  first.close(); // the success was already queued when the socket closed
  provider.socket_closed(value);
  auto reused = socket_with_handle(io, value);
  if (!reused) {
    PORTRES_SKIP("no new socket got the closed socket's handle value in 32 tries");
  }
  const DWORD own = receive_timeout(*reused);
  CHECK(provider.deliver_pending(0) == 1);
  CHECK(portres_test::run_until(io, [&] { return calls == 1; }));
  CHECK(receive_timeout(*reused) == own); // no tag written onto the new socket
  std::error_code ec;
  CHECK(portres::bind(*reused, ec) == 0);
  CHECK(ec == error::not_associated);
  CHECK(reused->local_endpoint(ec).port() == 0); // not bound to an ephemeral port outside the block
}

TEST_CASE("the association's tag leaves the socket's own receive timeout as it was once bound") {
  asio::io_context io;
  simulated_provider provider(io);
  native_selected native;
  auto r = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(4));
  asio::ip::tcp::socket s(io, asio::ip::tcp::v4());
  const DWORD own = 1234;
  REQUIRE(::setsockopt(static_cast<SOCKET>(s.native_handle()), SOL_SOCKET, SO_RCVTIMEO,
                       reinterpret_cast<const char*>(&own), sizeof own) == 0);
  associate(s, r.token());
  associate(s, r.token()); // again: still the socket's own value afterwards
  CHECK(r.range().contains(portres::bind(s)));
  CHECK(receive_timeout(s) == own);
}

TEST_CASE("cancellation: acquire honours every type; release only terminal, and then reports success") {
  asio::io_context io;
  simulated_provider provider(io);
  native_selected native;
  auto r = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(4));
  const auto live = detail::win::live_runtime_tokens();

  provider.set_mode(simulated_provider::completion_mode::hang);
  for (const auto type : {asio::cancellation_type::partial, asio::cancellation_type::total}) {
    asio::cancellation_signal cancel;
    int calls = 0;
    std::error_code result;
    async_acquire(io.get_executor(), protocol::udp, port_range::wildcard(4),
                  asio::bind_cancellation_slot(cancel.slot(), [&](std::error_code ec, runtime_reservation) {
                    ++calls;
                    result = ec;
                  }));
    io.run_for(std::chrono::milliseconds(20));
    cancel.emit(type);
    CHECK(portres_test::run_until(io, [&] { return calls == 1; }));
    CHECK(result == condition::aborted);
  }

  asio::cancellation_signal cancel;
  int calls = 0;
  std::error_code result = wsa(WSAEINVAL);
  r.async_release(asio::bind_cancellation_slot(cancel.slot(), [&](std::error_code ec) {
    ++calls;
    result = ec;
  }));
  io.run_for(std::chrono::milliseconds(20));
  cancel.emit(asio::cancellation_type::partial); // a release cannot undo itself: ignored
  io.run_for(std::chrono::milliseconds(50));
  CHECK(calls == 0);
  cancel.emit(asio::cancellation_type::terminal);
  CHECK(portres_test::run_until(io, [&] { return calls == 1; }));
  // The acquiring socket was closed: the reservation is gone, so not "aborted".
  CHECK_FALSE(result);
  CHECK(detail::win::live_runtime_tokens() == live - 1);
}

TEST_CASE("persistent functions at the GetProcAddress seam: create, lookup, delete and their errors") {
  asio::io_context io;
  simulated_provider provider(io);
  native_selected native;
  CHECK(capabilities().persistent);
  const port_range block{53000, 8};
  std::error_code ec;
  // CreatePersistentTcpPortReservation page: ERROR_ACCESS_DENIED without administrator rights.
  provider.set_administrator(false);
  persistent::create(protocol::tcp, block, ec);
  CHECK(ec == wsa(ERROR_ACCESS_DENIED));
  CHECK(ec == condition::access_denied);
  provider.set_administrator(true);

  const auto token = persistent::create(protocol::tcp, block);
  CHECK(token);
  CHECK(persistent::lookup(protocol::tcp, block) == token);
  // Lookup of a block no reservation has exactly: ERROR_NOT_FOUND -> error::unknown_token.
  persistent::lookup(protocol::tcp, {53000, 4}, ec);
  CHECK(ec == error::unknown_token);
  persistent::lookup(protocol::udp, block, ec);
  CHECK(ec == error::unknown_token);
  // ERROR_SHARING_VIOLATION: the block overlaps an existing persistent reservation.
  persistent::create(protocol::tcp, {53004, 8}, ec);
  CHECK(ec == wsa(ERROR_SHARING_VIOLATION));
  CHECK(ec == condition::in_use);

  // The token serves association and bind from the persistent block.
  asio::ip::tcp::socket socket(io, asio::ip::tcp::v4());
  associate(socket, token);
  CHECK(block.contains(portres::bind(socket)));

  persistent::remove(protocol::tcp, block);
  persistent::remove(protocol::tcp, block, ec);
  CHECK(ec == error::unknown_token);
  persistent::lookup(protocol::tcp, block, ec);
  CHECK(ec == error::unknown_token);
}
