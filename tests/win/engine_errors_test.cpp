// The Windows engine's translation of what the OS answers, against the
// simulated provider: completion-port codes (RtlNtStatusToDosError's Win32
// codes) to the Winsock code of the same failure, the codes whose meaning
// depends on who ended the operation, bind's WSAEACCES, and acquire results
// judged by their content rather than by the byte count.
#include "win/simulated_provider.hpp"

#include "os_trace.hpp"
#include "portres/portres.hpp"
#include "portres/socket_pool.hpp"
#include "support.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/udp.hpp>

#include <gsl/gsl>

#include <string_view>

#include <winsock2.h>
#include <mstcpip.h>
#include <windows.h>

using namespace portres;
using portres_test::native_selected;
using portres_test::run_until;
using portres_test::simulated_provider;

namespace {

std::error_code wsa(int code) { return {code, std::system_category()}; }

// Starts an acquire that the provider holds back, then completes it with a
// completion port's Win32 code; returns what the handler got. `before`
// runs while it is held back (e.g. a cancellation).
template <class Before>
std::error_code acquire_completing_with(unsigned long win32_error, Before before) {
  asio::io_context io;
  simulated_provider provider(io);
  native_selected native;
  provider.set_mode(simulated_provider::completion_mode::pending);
  asio::cancellation_signal cancel;
  int calls = 0;
  std::error_code result;
  async_acquire(io.get_executor(), protocol::tcp, port_range::wildcard(8),
                asio::bind_cancellation_slot(cancel.slot(), [&](std::error_code ec, runtime_reservation r) {
                  ++calls;
                  result = ec;
                  CHECK_FALSE(r);
                }));
  io.run_for(std::chrono::milliseconds(20));
  CHECK(calls == 0);
  before(cancel);
  CHECK(provider.deliver_pending(win32_error) == 1);
  CHECK(run_until(io, [&] { return calls == 1; }));
  io.run_for(std::chrono::milliseconds(20));
  CHECK(calls == 1);
  return result;
}

std::error_code acquire_completing_with(unsigned long win32_error) {
  return acquire_completing_with(win32_error, [](asio::cancellation_signal&) {});
}

} // namespace

TEST_CASE("completion-port codes arrive as the Winsock code of the same failure") {
  // RtlNtStatusToDosError: STATUS_ADDRESS_ALREADY_EXISTS -> ERROR_DUP_NAME (52).
  auto ec = acquire_completing_with(52);
  CHECK(ec == wsa(WSAEADDRINUSE));
  CHECK(ec == condition::in_use);
  // STATUS_TOO_MANY_ADDRESSES -> ERROR_TOO_MANY_NAMES (68): no block left.
  ec = acquire_completing_with(68);
  CHECK(ec == wsa(WSAENOBUFS));
  CHECK(ec == condition::exhausted);
  // STATUS_INVALID_DEVICE_REQUEST -> ERROR_INVALID_FUNCTION (1); ERROR_NOT_SUPPORTED (50) under Wine.
  CHECK(acquire_completing_with(1) == wsa(WSAEOPNOTSUPP));
  CHECK(acquire_completing_with(50) == wsa(WSAEOPNOTSUPP));
  // Closing under a pending I/O: 995 on Windows, 676 (ERROR_HANDLES_CLOSED) under Wine.
  CHECK(acquire_completing_with(676) == wsa(WSA_OPERATION_ABORTED));
}

TEST_CASE("completion-port codes 8, 487, 6 and 59 have their conditions") {
  // STATUS_NO_MEMORY -> ERROR_NOT_ENOUGH_MEMORY (8, also WSA_NOT_ENOUGH_MEMORY): out of resources.
  auto ec = acquire_completing_with(8);
  CHECK(ec == wsa(WSAENOBUFS));
  CHECK(ec == condition::exhausted);
  // ERROR_INVALID_ADDRESS (487): a buffer the provider could not use, as WSAEFAULT.
  ec = acquire_completing_with(487);
  CHECK(ec == wsa(WSAEFAULT));
  CHECK(ec == condition::invalid_argument);
  // STATUS_INVALID_HANDLE -> ERROR_INVALID_HANDLE (6, WSA_INVALID_HANDLE) on a socket nobody ended: not a socket.
  ec = acquire_completing_with(6);
  CHECK(ec == wsa(WSAENOTSOCK));
  CHECK(ec == condition::invalid_argument);
  CHECK(ec != condition::aborted);
  // STATUS_UNEXPECTED_NETWORK_ERROR -> ERROR_UNEXP_NET_ERR (59): the operation was cut short.
  ec = acquire_completing_with(59);
  CHECK(ec == wsa(WSAECONNABORTED));
  CHECK(ec == condition::aborted);
  // The raw codes compare equal to the same conditions.
  CHECK(wsa(8) == condition::exhausted);
  CHECK(wsa(487) == condition::invalid_argument);
  CHECK(wsa(6) == condition::invalid_argument);
  CHECK(wsa(59) == condition::aborted);
}

TEST_CASE("ERROR_NETNAME_DELETED (64) is aborted when the engine cancelled, as Asio decides, else a reset") {
  // Cancelled by the caller (CancelIoEx on the operation).
  auto ec = acquire_completing_with(64, [](asio::cancellation_signal& c) { c.emit(asio::cancellation_type::terminal); });
  CHECK(ec == wsa(WSA_OPERATION_ABORTED));
  CHECK(ec == condition::aborted);
  ec = acquire_completing_with(6, [](asio::cancellation_signal& c) { c.emit(asio::cancellation_type::total); });
  CHECK(ec == condition::aborted);
  // Nobody ended it: the connection or network went away under it.
  ec = acquire_completing_with(64);
  CHECK(ec == wsa(WSAECONNRESET));
  CHECK(ec != condition::aborted);
}

TEST_CASE("ERROR_NETNAME_DELETED (64) on an associate whose socket was closed is aborted") {
  asio::io_context io;
  simulated_provider provider(io);
  native_selected native;
  auto r = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(4));
  provider.set_mode(simulated_provider::completion_mode::pending);
  asio::ip::tcp::socket socket(io, asio::ip::tcp::v4());
  int calls = 0;
  std::error_code result;
  async_associate(socket, r.token(), [&](std::error_code ec) {
    ++calls;
    result = ec;
  });
  io.run_for(std::chrono::milliseconds(20));
  socket.close();
  CHECK(provider.deliver_pending(64) == 1);
  CHECK(run_until(io, [&] { return calls == 1; }));
  CHECK(result == condition::aborted);
}

// A bind that fails with WSAEACCES on Windows means the port is reserved or
// excluded by someone else (or held for exclusive use), not that the caller
// lacks a right: for an associated socket it is the block having no port for
// us now. The pool must keep its waiters waiting, as for WSAEADDRINUSE.
TEST_CASE("bind: WSAEACCES is a port taken by someone else, not a missing right, and pool waiters keep waiting") {
  asio::io_context io;
  simulated_provider provider(io);
  native_selected native;
  provider.set_exhausted_bind_error(WSAEACCES);
  auto r = acquire(io.get_executor(), protocol::udp, port_range::wildcard(1));
  socket_pool<asio::ip::udp>::options o;
  o.low_water = 0;
  o.high_water = 1;
  socket_pool<asio::ip::udp> pool(io.get_executor(), r, asio::ip::address_v4::loopback(), o);
  REQUIRE(run_until(io, [&] { return pool.stats().ready == 1; }));
  std::error_code ec;
  auto held = pool.try_get(ec);
  REQUIRE_FALSE(ec);

  asio::ip::udp::socket user(io, asio::ip::udp::v6());
  associate(user, r.token());
  CHECK(portres::bind(user, ec) == 0);
  CHECK(ec == condition::exhausted);
  CHECK(ec != condition::access_denied);
  CHECK(ec.message().find(std::to_string(r.range().first())) != std::string::npos);

  int calls = 0;
  std::error_code got;
  pooled_socket<asio::ip::udp> served;
  pool.async_get([&](std::error_code e, pooled_socket<asio::ip::udp> s) {
    ++calls;
    got = e;
    served = std::move(s);
  });
  CHECK(run_until(io, [&] { return pool.stats().exhausted_events >= 1 || calls > 0; }));
  CHECK(calls == 0); // still waiting: not failed as "access denied"
  CHECK(pool.stats().creation_failures == 0);
  held = {};
  CHECK(run_until(io, [&] { return calls == 1; }));
  CHECK_FALSE(got);
  CHECK(served.port() == r.range().first());
}

// Nothing documents how many bytes SIO_ACQUIRE_PORT_RESERVATION reports (an
// overlapped completion may well say 0): the engine judges the instance it
// wrote (a non-zero token, the count asked for, the block asked for) and
// reports the count beside it.
TEST_CASE("acquire: the answer's content decides, not the byte count, which is reported") {
  asio::io_context io;
  simulated_provider provider(io);
  native_selected native;
  detail::os_trace::enable(true);
  auto off = gsl::finally([] { detail::os_trace::enable(false); });
  for (const unsigned long count : {0ul, 15ul, 24ul}) {
    CAPTURE(count);
    provider.set_acquire_bytes(count);
    const auto mark = detail::os_trace::mark();
    std::error_code ec;
    auto r = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(6), ec);
    REQUIRE_FALSE(ec);
    CHECK(r.range().count() == 6);
    int got = 0;
    runtime_reservation later;
    async_acquire(io.get_executor(), protocol::udp, port_range::wildcard(3), [&](std::error_code e, runtime_reservation x) {
      ++got;
      CHECK_FALSE(e);
      later = std::move(x);
    });
    CHECK(run_until(io, [&] { return got == 1; }));
    CHECK(later.range().count() == 3);
    const auto calls = detail::os_trace::since(mark);
    int acquires = 0;
    for (const auto& c : calls) {
      if (std::string_view(c.what) != "SIO_ACQUIRE_PORT_RESERVATION") continue;
      ++acquires;
      CHECK(c.bytes == count);
    }
    CHECK(acquires == 2);
  }
  provider.set_acquire_bytes(sizeof(INET_PORT_RESERVATION_INSTANCE));
  provider.set_zero_token(true);
  std::error_code ec;
  auto r = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(4), ec);
  CHECK(ec == error::bad_response);
  CHECK_FALSE(r);
}
