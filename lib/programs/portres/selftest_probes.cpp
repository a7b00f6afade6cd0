// The probes of `portres selftest`: questions the reference pages leave open,
// asked of the OS so that the first report from a Windows machine settles
// them (the simulated provider in tests/win assumes one answer for each and
// can give the other), and socket reuse after a disconnect, whose cost
// depends on which side closed first. A probe's result is `answered` with
// the OS's answer, whichever it is; it fails only when it cannot ask.
#include "selftest_support.hpp"

#include <portres/portres.hpp>

#include <asio/associated_cancellation_slot.hpp>
#include <asio/buffer.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/udp.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#if defined(_WIN32)
#include <winsock2.h>
#include <ws2tcpip.h>
#endif

namespace cli::selftest_detail {
namespace {

using tcp = asio::ip::tcp;
using udp = asio::ip::udp;
using clock = std::chrono::steady_clock;

long long ms_since(clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - start).count();
}

} // namespace

// Windows acquires a block on a dual-mode AF_INET6 socket (and the pool's
// sockets are dual-mode too); whether a plain AF_INET socket may associate
// with such a block is not documented.
check_result probe_ipv4_on_dual_mode(context& c) {
  std::error_code ec;
  auto r = portres::acquire(c.ex, portres::protocol::tcp, portres::port_range::wildcard(2), ec);
  if (ec) return failed_or_unsupported(ec, "acquire tcp wildcard(2)");
  tcp::socket v4(c.io, tcp::v4());
  portres::associate(v4, r.token(), ec);
  if (ec) return answered("no", "an AF_INET socket cannot associate: " + describe(ec), ec);
  const auto port = portres::bind(v4, ec);
  if (ec) return answered("no", "an AF_INET socket associated but its bind failed: " + describe(ec), ec);
  if (!r.range().contains(port)) {
    return answered("no", "an AF_INET socket bound to port " + std::to_string(port) + ", outside the block");
  }
  return answered("yes", "an AF_INET socket associated and bound to port " + std::to_string(port) + " of " +
                             portres::to_string(r.range()));
}

// After a bind that failed because the block had no free port, does the
// socket stay associated, so that a retry (once a port is free) binds inside
// the block? The engine assumes so and lets callers retry.
check_result probe_failed_bind_keeps_association(context& c) {
  std::error_code ec;
  auto r = portres::acquire(c.ex, portres::protocol::udp, portres::port_range::wildcard(1), ec);
  if (ec) return failed_or_unsupported(ec, "acquire udp wildcard(1)");
  udp::socket first(c.io, udp::v4());
  portres::associate(first, r.token(), ec);
  if (!ec) portres::bind(first, ec);
  if (ec) return fail(ec, "first socket: " + describe(ec));
  udp::socket second(c.io, udp::v4());
  portres::associate(second, r.token(), ec);
  if (ec) return fail(ec, "associate the second socket: " + describe(ec));
  portres::bind(second, ec);
  if (!ec) return fail({}, "the second socket was bound although the 1-port block was in use");
  const auto failed_with = ec;
  first.close();
  // The freed port may take a moment to be seen free (Linux caches its
  // query of held ports for 100 ms): a retry still exhausted says nothing yet.
  std::uint16_t port = 0;
  for (int attempt = 0; attempt < 20; ++attempt) {
    port = portres::bind(second, ec);
    if (ec != portres::condition::exhausted) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const std::string first_bind = "the bind failed (" + describe(failed_with) + "), the port was freed, the retry ";
  if (ec == portres::condition::exhausted) {
    return answered("unknown", first_bind + "still found no free port after 1 s: " + describe(ec), ec);
  }
  if (!ec && r.range().contains(port)) {
    return answered("yes", first_bind + "bound port " + std::to_string(port) + " of the block", failed_with);
  }
  if (ec == portres::error::bad_response) {
    return answered("no", first_bind + "bound outside the block: the association was dropped", ec);
  }
  return answered("no", first_bind + "failed: " + describe(ec), ec);
}

// May a runtime reservation be released while sockets are bound to its
// ports, and what becomes of them?
check_result probe_release_while_bound(context& c) {
  std::error_code ec;
  auto r = portres::acquire(c.ex, portres::protocol::tcp, portres::port_range::wildcard(2), ec);
  if (ec) return failed_or_unsupported(ec, "acquire tcp wildcard(2)");
  const auto token = r.token();
  tcp::socket bound(c.io, tcp::v4());
  portres::associate(bound, token, ec);
  std::uint16_t port = 0;
  if (!ec) port = portres::bind(bound, ec);
  if (ec) return fail(ec, "associate and bind: " + describe(ec));
  std::error_code released;
  r.release(released);
  std::error_code still;
  const bool keeps = bound.local_endpoint(still).port() == port;
  tcp::socket late(c.io, tcp::v4());
  std::error_code refused;
  portres::associate(late, token, refused);
  const std::string detail = "release with port " + std::to_string(port) + " bound: " +
                             (released ? describe(released) : std::string("succeeded")) + "; the bound socket " +
                             (keeps ? "keeps its port" : "lost its port") + "; the old token is " +
                             (refused ? "refused (" + describe(refused) + ")" : std::string("still accepted"));
  return answered(released ? "no" : "yes", detail, released);
}

#if defined(_WIN32)
namespace {

constexpr int so_reuse_unicastport = 0x3007; // SO_REUSE_UNICASTPORT; MinGW's headers lack it

std::string yes_no(bool yes) { return yes ? "yes" : "no"; }

// An explicit bind to `port` (0: the OS picks) of the IPv4 any-address,
// bypassing portres::bind (which binds port 0 only and checks the block).
int raw_bind(tcp::socket& s, std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  a.sin_port = htons(port);
  const auto handle = static_cast<SOCKET>(s.native_handle());
  const int code = ::bind(handle, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0 ? 0 : ::WSAGetLastError();
  record_call("bind (probe)", handle, code);
  return code;
}

// A connect within the check's bound (WSAETIMEDOUT past it).
int raw_connect(context& c, tcp::socket& s, const tcp::endpoint& to) {
  auto connected = await_once<>(c.io, "connect", [&](auto handler) { s.async_connect(to, std::move(handler)); });
  const int code = connected.failure ? WSAETIMEDOUT : connected.state->ec.value();
  record_call("connect (probe)", static_cast<std::uint64_t>(s.native_handle()), code);
  return code;
}

int reuse_unicastport(tcp::socket& s) {
  const DWORD on = 1;
  const auto handle = static_cast<SOCKET>(s.native_handle());
  const int code = ::setsockopt(handle, SOL_SOCKET, so_reuse_unicastport, reinterpret_cast<const char*>(&on), sizeof on) == 0
                       ? 0
                       : ::WSAGetLastError();
  record_call("setsockopt SO_REUSE_UNICASTPORT", handle, code);
  return code;
}

std::uint16_t local_port(tcp::socket& s) {
  std::error_code ec;
  return s.local_endpoint(ec).port();
}

} // namespace

// Issue 18: where the OS picks the port at bind time, can two sockets of one
// reservation share a port towards two destinations? Asked with a 1-port
// block, so that sharing is the only way the second connection gets one:
// plainly (the second socket binds the first one's port explicitly), and with
// SO_REUSE_UNICASTPORT on both (the port is chosen at connect time).
check_result probe_shared_port(context& c) {
  std::error_code ec;
  auto plain = portres::acquire(c.ex, portres::protocol::tcp, portres::port_range::wildcard(1), ec);
  if (ec) return failed_or_unsupported(ec, "acquire tcp wildcard(1)");
  tcp::acceptor one(c.io, {asio::ip::address_v4::loopback(), 0});
  tcp::acceptor two(c.io, {asio::ip::address_v4::loopback(), 0});

  tcp::socket a(c.io, tcp::v4());
  portres::associate(a, plain.token(), ec);
  std::uint16_t port = 0;
  if (!ec) port = portres::bind(a, ec);
  if (ec) return fail(ec, "first socket: " + describe(ec));
  if (int code = raw_connect(c, a, one.local_endpoint())) {
    return fail({code, std::system_category()}, "first socket's connect");
  }
  tcp::socket b(c.io, tcp::v4());
  portres::associate(b, plain.token(), ec);
  if (ec) return fail(ec, "associate the second socket: " + describe(ec));
  const int b_bind = raw_bind(b, port);
  const int b_connect = b_bind == 0 ? raw_connect(c, b, two.local_endpoint()) : -1;
  const bool plain_shared = b_bind == 0 && b_connect == 0 && local_port(b) == port;
  std::string detail = "plain (no option): second socket bind to port " + std::to_string(port) + " -> " + std::to_string(b_bind) +
                       (b_bind == 0 ? ", connect to the other destination -> " + std::to_string(b_connect) : "");

  auto reuse = portres::acquire(c.ex, portres::protocol::tcp, portres::port_range::wildcard(1), ec);
  if (ec) return fail(ec, "acquire the second tcp wildcard(1): " + describe(ec));
  tcp::socket x(c.io, tcp::v4());
  tcp::socket y(c.io, tcp::v4());
  const int x_opt = reuse_unicastport(x);
  const int y_opt = reuse_unicastport(y);
  portres::associate(x, reuse.token(), ec);
  if (!ec) portres::associate(y, reuse.token(), ec);
  if (ec) return fail(ec, "associate with SO_REUSE_UNICASTPORT set: " + describe(ec));
  const int x_bind = raw_bind(x, 0);
  const int x_connect = x_bind == 0 ? raw_connect(c, x, one.local_endpoint()) : -1;
  const int y_bind = raw_bind(y, 0);
  const int y_connect = y_bind == 0 ? raw_connect(c, y, two.local_endpoint()) : -1;
  const auto x_port = local_port(x);
  const auto y_port = local_port(y);
  const bool reuse_shared = x_connect == 0 && y_connect == 0 && x_port == y_port && reuse.range().contains(x_port);
  detail += "; SO_REUSE_UNICASTPORT (setsockopt " + std::to_string(x_opt) + "/" + std::to_string(y_opt) +
            "): bind 0 -> " + std::to_string(x_bind) + "/" + std::to_string(y_bind) + ", connect -> " +
            std::to_string(x_connect) + "/" + std::to_string(y_connect) + ", ports " + std::to_string(x_port) + "/" +
            std::to_string(y_port) + " (block " + portres::to_string(reuse.range()) + ")";
  // Without the option set, the second variant asked nothing about it.
  const int opt_failed = x_opt ? x_opt : y_opt;
  const std::string reuse_answer =
      opt_failed ? "could not set option (" + std::to_string(opt_failed) + ")" : yes_no(reuse_shared);
  return answered("plain (no option; explicit bind to the taken port): " + yes_no(plain_shared) +
                      "; SO_REUSE_UNICASTPORT: " + reuse_answer,
                  detail);
}
#else
check_result probe_shared_port(context&) {
  return skipped("a Windows question (the OS picks the port at bind); on Linux the pool chooses ports per destination");
}
#endif

namespace {

// A pool of one TCP socket connected to a local listener, for the reuse checks.
struct reuse_rig {
  explicit reuse_rig(context& ctx) : c(ctx), listener(ctx.io, {asio::ip::address_v4::loopback(), 0}), peer(ctx.io) {}

  // Acquires, stocks the pool and connects its socket; a result when that fails.
  std::optional<check_result> connect() {
    std::error_code ec;
    block = portres::acquire(c.ex, portres::protocol::tcp, portres::port_range::wildcard(4), ec);
    if (ec) return failed_or_unsupported(ec, "acquire tcp wildcard(4)");
    portres::socket_pool<tcp>::options o;
    o.low_water = 0;
    o.high_water = 1;
    pool.emplace(c.ex, block, asio::ip::address_v4::loopback(), o);
    if (!run_until(c.io, [&] { return pool->stats().ready == 1; }, check_bound)) {
      return fail({}, "the pool never stocked a socket");
    }
    if (auto bad = connect_pooled()) return bad;
    port = socket.port();
    return std::nullopt;
  }

  // Connects a pooled socket to the listener, then accepts it from the
  // backlog. (Synchronous accept: Asio's async_accept would make portres.exe
  // import mswsock.dll, which is not one of Windows' KnownDLLs. It is a
  // non-blocking one, retried within the check's bound.)
  std::optional<check_result> connect_pooled() {
    auto connected = await_once<portres::pooled_socket<tcp>>(c.io, "connect", [&](auto handler) {
      pool->async_connect(listener.local_endpoint(), std::move(handler));
    });
    if (connected.failure) return connected.failure;
    if (const auto ec = connected.state->ec) return fail(ec, "connect: " + describe(ec));
    socket = std::move(std::get<0>(connected.state->values));
    if (peer.is_open()) peer.close();
    std::error_code ec;
    listener.non_blocking(true, ec);
    const auto deadline = clock::now() + check_bound;
    do {
      listener.accept(peer, ec);
      if (ec != asio::error::would_block) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    } while (clock::now() < deadline);
    if (ec == asio::error::would_block) return fail(ec, "accept: the connection never reached the backlog");
    if (ec) return fail(ec, "accept: " + describe(ec));
    return std::nullopt;
  }

  // Gives the socket back and waits up to `limit` until the pool is done
  // with it (recycled, failed to, or closed without trying): true then.
  bool give_back(std::chrono::milliseconds limit) {
    socket = {};
    return run_until(c.io, [&] { return pool->stats().in_use == 0; }, limit);
  }

  // What became of the socket given back, once give_back() returned true.
  std::string outcome() const {
    const auto s = pool->stats();
    if (s.recycled == 1) return "recycled";
    if (s.recycle_failures == 1) return "DisconnectEx(TF_REUSE_SOCKET) failed; the pool closed the socket";
    return "the pool closed it without trying (no peer address: not connected any more?)";
  }

  // Connects again; the recycled socket must do it from its port.
  std::optional<check_result> reconnect() {
    if (auto bad = connect_pooled()) {
      bad->detail = "the recycled socket: " + bad->detail;
      return bad;
    }
    if (socket.port() != port) return fail({}, "the recycled socket reconnected from another port");
    return std::nullopt;
  }

  context& c;
  portres::runtime_reservation block;
  tcp::acceptor listener;
  tcp::socket peer;
  std::optional<portres::socket_pool<tcp>> pool;
  portres::pooled_socket<tcp> socket;
  std::uint16_t port = 0;
};

std::optional<check_result> reuse_unsupported() {
  const auto caps = portres::capabilities();
  if (caps.socket_reuse) return std::nullopt;
  return check_result{"not_supported", portres::error::os_unsupported, caps.socket_reuse_reason};
}

} // namespace

// DisconnectEx(TF_REUSE_SOCKET) returns a socket for reuse at once when the
// peer closed first; the side that closes first waits out TIME_WAIT (the
// DisconnectEx page), so reuse pays only when peers close first.
check_result socket_reuse_peer_closes_first(context& c) {
  if (auto no = reuse_unsupported()) return *no;
  reuse_rig rig(c);
  if (auto bad = rig.connect()) return *bad;
  rig.peer.close();
  // Our side reads the peer's FIN: then its disconnect closes passively.
  auto read = await_once<std::size_t>(c.io, "the read of the peer's close", [&](auto handler) {
    // The buffer lives with the operation, which may outlive the check.
    auto byte = std::make_shared<char>(0);
    const auto slot = asio::get_associated_cancellation_slot(handler);
    rig.socket->async_read_some(asio::buffer(byte.get(), 1),
                                asio::bind_cancellation_slot(slot, [byte, handler = std::move(handler)](
                                                                       std::error_code e, std::size_t n) mutable {
                                  handler(e, n);
                                }));
  });
  if (read.failure) return *read.failure;
  const auto start = clock::now();
  if (!rig.give_back(check_bound)) return fail({}, "the returned socket was neither recycled nor closed in 5 s");
  const auto elapsed = ms_since(start);
  if (rig.pool->stats().recycled != 1) return fail({}, "peer closed first: " + rig.outcome());
  if (auto bad = rig.reconnect()) return *bad;
  auto r = pass("peer closed first: recycled with DisconnectEx(TF_REUSE_SOCKET) in " + std::to_string(elapsed) +
                " ms and reconnected from port " + std::to_string(rig.port));
  r.elapsed_ms = elapsed;
  return r;
}

// The other order: the pool side gives its socket back while the peer stays
// open. How long DisconnectEx takes then is what this records: over a second
// it is `slow` (not a failure: the pool serves others meanwhile).
check_result socket_reuse_active_close(context& c) {
  if (auto no = reuse_unsupported()) return *no;
  reuse_rig rig(c);
  if (auto bad = rig.connect()) return *bad;
  constexpr auto limit = std::chrono::seconds(10);
  const auto start = clock::now();
  const bool done = rig.give_back(limit);
  const auto elapsed = ms_since(start);
  check_result r;
  if (!done) {
    r = {"slow", {}, "active close: still disconnecting after " + std::to_string(elapsed) +
                         " ms (DisconnectEx waits out TIME_WAIT); reuse pays only when the peer closes first"};
  } else if (rig.pool->stats().recycled != 1) {
    r = answered("not reused", "active close, after " + std::to_string(elapsed) + " ms: " + rig.outcome());
  } else if (elapsed > 1000) {
    r = {"slow", {}, "active close: recycled after " + std::to_string(elapsed) + " ms (TIME_WAIT)"};
  } else {
    r = pass("active close: recycled in " + std::to_string(elapsed) + " ms");
  }
  r.elapsed_ms = elapsed;
  rig.pool->close(); // aborts a disconnect still under way
  return r;
}

} // namespace cli::selftest_detail
