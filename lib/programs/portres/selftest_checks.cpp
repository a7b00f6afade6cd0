// The checks of `portres selftest` that exercise the library's contract
// against the OS: runtime reservations (synchronous and through the
// completion port), association and bind, exhaustion, release,
// cancellation, IPv6 and persistent reservations. The probes of what the
// reference pages leave open are in selftest_probes.cpp.
#include "selftest.hpp"
#include "selftest_support.hpp"

#include <portres/portres.hpp>

#include <asio/ip/tcp.hpp>
#include <asio/ip/udp.hpp>

#include <functional>
#include <set>
#include <utility>

#if defined(_WIN32)
#include <windows.h>
#endif

namespace cli {
namespace selftest_detail {
namespace {

using tcp = asio::ip::tcp;

check_result inconclusive(std::error_code ec, std::string detail, bool pending) {
  return {"inconclusive", ec, std::move(detail), pending};
}

// Windows: the code GetProcAddress leaves for the persistent functions
// (ERROR_PROC_NOT_FOUND where the system lacks them, e.g. Wine).
std::optional<int> missing_function_code() {
#if defined(_WIN32)
  const HMODULE iphlpapi = ::LoadLibraryExW(L"iphlpapi.dll", nullptr, LOAD_LIBRARY_SEARCH_SYSTEM32);
  if (!iphlpapi) return static_cast<int>(::GetLastError());
  ::SetLastError(0);
  if (::GetProcAddress(iphlpapi, "CreatePersistentTcpPortReservation")) return std::nullopt;
  return static_cast<int>(::GetLastError());
#else
  return std::nullopt;
#endif
}

class sequence {
public:
  explicit sequence(context& c) : io_(c.io), ex_(c.ex) {}

  check_result wildcard_acquire() {
    std::error_code ec;
    block_ = portres::acquire(ex_, portres::protocol::tcp, portres::port_range::wildcard(20), ec);
    sync_unsupported_ = ec == portres::condition::not_supported;
    if (ec) return failed_or_unsupported(ec, "acquire tcp wildcard(20)");
    if (block_.range().count() != 20) return fail({}, "granted " + portres::to_string(block_.range()) + ", not 20 ports");
    return pass("tcp block " + portres::to_string(block_.range()) + " token " + portres::to_string(block_.token()));
  }

  check_result specific_acquire() {
    std::error_code ec;
    auto probe = portres::acquire(ex_, portres::protocol::udp, portres::port_range::wildcard(8), ec);
    if (ec) return failed_or_unsupported(ec, "acquire udp wildcard(8) to find a free block");
    const auto range = probe.range();
    probe.release(ec);
    if (ec) return fail(ec, "release of the probe block: " + ec.message());
    auto specific = portres::acquire(ex_, portres::protocol::udp, range, ec);
    if (ec) return failed_or_unsupported(ec, "acquire udp " + portres::to_string(range));
    if (specific.range() != range) return fail({}, "asked for " + portres::to_string(range) + ", got " + portres::to_string(specific.range()));
    return pass("udp block " + portres::to_string(range));
  }

  check_result associate_and_bind_20() {
    if (!block_) return skipped("no wildcard block");
    std::set<std::uint16_t> ports;
    for (int i = 0; i < 20; ++i) {
      auto& s = sockets_.emplace_back(io_, tcp::v4());
      std::error_code ec;
      portres::associate(s, block_.token(), ec);
      if (ec) return failed_unless_sync_unsupported(ec, "associate socket " + std::to_string(i + 1), sync_unsupported_);
      const auto port = portres::bind(s, ec);
      if (ec) return failed_unless_sync_unsupported(ec, "bind socket " + std::to_string(i + 1), sync_unsupported_);
      if (!block_.range().contains(port)) return fail({}, "port " + std::to_string(port) + " is outside the block");
      ports.insert(port);
    }
    if (ports.size() != 20) return fail({}, std::to_string(ports.size()) + " distinct ports for 20 sockets");
    return pass("20 sockets on 20 distinct ports of " + portres::to_string(block_.range()));
  }

  check_result twenty_first_exhausted() {
    if (sockets_.size() != 20) return skipped("the 20 sockets are not bound");
    tcp::socket extra(io_, tcp::v4());
    std::error_code ec;
    portres::associate(extra, block_.token(), ec);
    if (!ec) portres::bind(extra, ec);
    if (ec == portres::condition::exhausted) return {"pass", ec, "21st socket: " + describe(ec)};
    if (!ec) return fail({}, "a 21st socket was bound to port " + std::to_string(extra.local_endpoint().port()));
    return fail(ec, "21st socket: expected exhausted, got " + ec.message());
  }

  check_result release() {
    if (!block_) return skipped("no wildcard block");
    const auto token = block_.token();
    std::error_code ec;
    block_.release(ec);
    sockets_.clear(); // their ports are free for the checks that follow
    if (ec) return failed_or_unsupported(ec, "release");
    tcp::socket late(io_, tcp::v4());
    portres::associate(late, token, ec);
    if (!ec) return fail({}, "the released token still associates");
    return {"pass", ec, "released; the old token is refused: " + describe(ec)};
  }

  // async_acquire -> async_associate -> bind, each through the completion
  // port as the pool uses them: any error fails (not_supported only where
  // the synchronous acquire of this run was not supported either).
  template <class Protocol>
  check_result async_chain(portres::protocol p) {
    const std::string name = p == portres::protocol::tcp ? "tcp" : "udp";
    auto acquired = await_once<portres::runtime_reservation>(io_, "async_acquire " + name, [&](auto handler) {
      portres::async_acquire(ex_, p, portres::port_range::wildcard(4), std::move(handler));
    });
    if (acquired.failure) return *acquired.failure;
    if (const auto ec = acquired.state->ec) return failed_unless_sync_unsupported(ec, "async_acquire " + name, sync_unsupported_);
    const auto& r = std::get<0>(acquired.state->values);
    if (r.range().count() != 4) return fail({}, "async_acquire granted " + portres::to_string(r.range()) + ", not 4 ports");
    typename Protocol::socket s(io_, Protocol::v4());
    auto associated = await_once<>(io_, "async_associate", [&](auto handler) {
      portres::async_associate(s, r.token(), std::move(handler));
    });
    if (associated.failure) return *associated.failure;
    std::error_code ec = associated.state->ec;
    if (ec) return failed_unless_sync_unsupported(ec, "async_associate", sync_unsupported_);
    const auto port = portres::bind(s, ec);
    if (ec) return fail(ec, "bind after async_associate: " + describe(ec));
    if (!r.range().contains(port)) return fail({}, "port " + std::to_string(port) + " is outside the block");
    return pass(name + " block " + portres::to_string(r.range()) + ": async_acquire, async_associate, bind -> port " +
                std::to_string(port));
  }

  check_result cancel_pending() {
    auto acquired = await_once<portres::runtime_reservation>(
        io_, "the cancelled acquire",
        [&](auto handler) {
          portres::async_acquire(ex_, portres::protocol::tcp, portres::port_range::wildcard(4), std::move(handler));
        },
        [](asio::cancellation_signal& cancel) { cancel.emit(asio::cancellation_type::terminal); });
    if (acquired.failure) return *acquired.failure;
    const auto& st = *acquired.state;
    const auto result = st.ec;
    const bool got = static_cast<bool>(std::get<0>(st.values));
    check_result r;
    if (result == portres::condition::not_supported) {
      r = failed_unless_sync_unsupported(result, "acquire", sync_unsupported_);
    } else if (!st.pending) {
      r = inconclusive(result, "the acquire completed before the cancellation: nothing was pending (" +
                                   (result ? describe(result) : std::string("granted")) + ")",
                       false);
    } else if (result == portres::condition::aborted && !got) {
      r = {"pass", result, "pending when cancelled; aborted: " + describe(result), true};
    } else if (!result && got) {
      r = inconclusive({}, "pending when cancelled, but granted: the cancellation came too late or this backend's "
                           "acquire does not support it",
                       true);
    } else {
      r = fail(result, "cancelled acquire: " + describe(result));
    }
    r.pending = st.pending;
    return r;
  }

  // A pool waiter on a block whose only port is taken stays pending until a
  // socket comes back: portres' own per-operation cancellation, on any OS.
  check_result cancel_pool_waiter() {
    std::error_code ec;
    auto r = portres::acquire(ex_, portres::protocol::tcp, portres::port_range::wildcard(1), ec);
    if (ec) return failed_or_unsupported(ec, "acquire tcp wildcard(1)");
    portres::socket_pool<tcp>::options o;
    o.low_water = 0;
    o.high_water = 1;
    portres::socket_pool<tcp> pool(ex_, r, asio::ip::address_v4::loopback(), o);
    if (!run_until(io_, [&] { return pool.stats().ready == 1; }, check_bound)) return fail({}, "the pool never stocked a socket");
    auto held = pool.try_get(ec);
    if (ec) return fail(ec, "pool: " + ec.message());
    bool waiting = false;
    auto waited = await_once<portres::pooled_socket<tcp>>(
        io_, "the cancelled waiter",
        [&](auto handler) {
          pool.async_get(std::move(handler));
          // Served from stock at once (in use), nothing waits: no need to wait the bound out.
          run_until(io_, [&] { return pool.stats().waiters == 1 || pool.stats().in_use > 0; }, check_bound);
          waiting = pool.stats().waiters == 1;
        },
        [](asio::cancellation_signal& cancel) { cancel.emit(asio::cancellation_type::terminal); });
    if (waited.failure) return *waited.failure;
    const bool pending = waited.state->pending && waiting;
    const auto result = waited.state->ec;
    check_result out;
    if (!pending) {
      out = inconclusive(result, "the waiter was served before the cancellation: nothing was pending", false);
    } else if (result == portres::condition::aborted) {
      out = {"pass", result, "a pending pool waiter, cancelled: " + describe(result), true};
    } else {
      out = fail(result, "cancelled pool waiter: " + (result ? describe(result) : std::string("served")));
    }
    out.pending = pending;
    return out;
  }

  check_result close_with_pending() {
    std::error_code ec;
    auto r = portres::acquire(ex_, portres::protocol::tcp, portres::port_range::wildcard(4), ec);
    if (ec) return failed_or_unsupported(ec, "acquire tcp wildcard(4)");
    tcp::socket s(io_, tcp::v4());
    auto associated = await_once<>(
        io_, "the associate after close", [&](auto handler) { portres::async_associate(s, r.token(), std::move(handler)); },
        [&](asio::cancellation_signal&) { s.close(); });
    if (associated.failure) return *associated.failure;
    const auto result = associated.state->ec;
    const bool pending = associated.state->pending;
    check_result out;
    if (result == portres::condition::not_supported) {
      out = failed_unless_sync_unsupported(result, "associate", sync_unsupported_);
    } else if (!pending) {
      out = inconclusive(result, "the associate completed before the close: nothing was pending (" +
                                     (result ? describe(result) : std::string("associated")) + ")",
                         false);
    } else if (result == portres::condition::aborted) {
      out = {"pass", result, "pending when closed; aborted: " + describe(result), true};
    } else if (!result) {
      out = inconclusive({}, "pending when closed, but it completed: the close came too late", true);
    } else {
      out = fail(result, "associate with the socket closed: " + describe(result));
    }
    out.pending = pending;
    return out;
  }

  check_result ipv6_bind() {
    std::error_code ec;
    auto r = portres::acquire(ex_, portres::protocol::tcp, portres::port_range::wildcard(4), ec);
    if (ec) return failed_or_unsupported(ec, "acquire tcp wildcard(4)");
    tcp::socket s(io_);
    s.open(tcp::v6(), ec);
    if (ec) return {"not_supported", ec, "no IPv6 socket here: " + ec.message()};
    portres::associate(s, r.token(), ec);
    if (ec) return failed_or_unsupported(ec, "associate an IPv6 socket");
    const auto port = portres::bind(s, ec);
    if (ec) return failed_or_unsupported(ec, "bind an IPv6 socket");
    if (!r.range().contains(port)) return fail({}, "IPv6 port " + std::to_string(port) + " outside the block");
    return pass("IPv6 socket on port " + std::to_string(port) + " of " + portres::to_string(r.range()));
  }

  check_result persistent() {
    const auto caps = portres::capabilities();
    if (!caps.persistent) {
      return {"not_supported", portres::error::os_unsupported, caps.persistent_reason, {}, missing_function_code()};
    }
    std::error_code ec;
    // A block the OS is not using now: found through a runtime reservation, then given back.
    auto probe = portres::acquire(ex_, portres::protocol::tcp, portres::port_range::wildcard(4), ec);
    if (ec) return failed_or_unsupported(ec, "acquire tcp wildcard(4) to find a free block");
    const auto range = probe.range();
    probe.release(ec);
    const auto token = portres::persistent::create(portres::protocol::tcp, range, ec);
    if (ec == portres::condition::access_denied) {
      return {"skipped", ec, "not elevated: create answers access denied, as documented (" + ec.message() + ")"};
    }
    if (ec) return failed_or_unsupported(ec, "persistent create " + portres::to_string(range));
    const auto found = portres::persistent::lookup(portres::protocol::tcp, range, ec);
    std::error_code removed;
    portres::persistent::remove(portres::protocol::tcp, range, removed);
    if (ec) return fail(ec, "lookup after create: " + ec.message());
    if (found != token) return fail({}, "lookup returned another token");
    if (removed) return fail(removed, "delete: " + removed.message());
    portres::persistent::lookup(portres::protocol::tcp, range, ec);
    if (ec != portres::error::unknown_token) return fail(ec, "lookup after delete: expected unknown_token, got " + ec.message());
    return pass("created, looked up and deleted tcp " + portres::to_string(range));
  }

private:
  asio::io_context& io_;
  asio::any_io_executor ex_;
  portres::runtime_reservation block_;
  std::vector<tcp::socket> sockets_;
  bool sync_unsupported_ = false; // the synchronous acquire of this run answered not_supported
};

} // namespace
} // namespace selftest_detail

std::vector<selftest_detail::check_result> run_checks(asio::io_context& io,
                                                     const std::function<void(const selftest_detail::check_result&)>& done) {
  using namespace selftest_detail;
  context c{io, io.get_executor()};
  sequence s(c);
  const std::vector<std::pair<const char*, std::function<check_result()>>> checks = {
      {"wildcard_acquire", [&] { return s.wildcard_acquire(); }},
      {"specific_acquire", [&] { return s.specific_acquire(); }},
      {"associate_bind_20", [&] { return s.associate_and_bind_20(); }},
      {"exhausted_21st", [&] { return s.twenty_first_exhausted(); }},
      {"release", [&] { return s.release(); }},
      {"async_tcp", [&] { return s.async_chain<asio::ip::tcp>(portres::protocol::tcp); }},
      {"async_udp", [&] { return s.async_chain<asio::ip::udp>(portres::protocol::udp); }},
      {"cancel_pending", [&] { return s.cancel_pending(); }},
      {"cancel_pool_waiter", [&] { return s.cancel_pool_waiter(); }},
      {"close_with_pending", [&] { return s.close_with_pending(); }},
      {"ipv6_bind", [&] { return s.ipv6_bind(); }},
      {"probe_ipv4_on_dual_mode", [&] { return probe_ipv4_on_dual_mode(c); }},
      {"probe_failed_bind_keeps_association", [&] { return probe_failed_bind_keeps_association(c); }},
      {"probe_release_while_bound", [&] { return probe_release_while_bound(c); }},
      {"probe_shared_port", [&] { return probe_shared_port(c); }},
      {"persistent", [&] { return s.persistent(); }},
      {"socket_reuse", [&] { return socket_reuse_peer_closes_first(c); }},
      {"socket_reuse_active_close", [&] { return socket_reuse_active_close(c); }},
  };
  std::vector<check_result> results;
  for (const auto& [name, run] : checks) {
    const auto mark = portres::detail::os_trace::mark();
    check_result r;
    try {
      r = run();
    } catch (const std::exception& e) {
      r = fail({}, std::string("exception: ") + e.what());
    }
    r.name = name;
    r.os_calls = portres::detail::os_trace::since(mark);
    // A failure portres found without an error of its own (a pool that never
    // stocked a socket): the last OS call that failed says why.
    if (!r.ec && (r.result == "fail" || r.result == "not_supported")) {
      for (auto it = r.os_calls.rbegin(); it != r.os_calls.rend(); ++it) {
        if (!it->result) continue;
        r.ec = it->result;
        r.detail += " (last failed OS call: " + std::string(it->what) + ": " + describe(it->result) + ")";
        break;
      }
    }
    if (done) done(r);
    results.push_back(std::move(r));
  }
  return results;
}

} // namespace cli
