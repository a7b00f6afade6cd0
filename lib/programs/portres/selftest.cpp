// `portres selftest [--json]`: runs the conformance sequence against the
// operating system it runs on, through the native backend, so a user with a
// real Windows machine can tell us what that machine does. Each check reports
// pass, fail, not_supported, skipped or inconclusive (a cancellation check
// whose operation was no longer pending when cancelled: it proves nothing),
// with the OS's own error code when the OS gave one.
#include "selftest.hpp"

#include "cli/json.hpp"

#include <portres/portres.hpp>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <chrono>
#include <cstdio>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#if defined(_WIN32)
#include <windows.h>
#else
#include <sys/utsname.h>
#endif

namespace cli {
namespace {

using tcp = asio::ip::tcp;

struct check_result {
  check_result() = default;
  check_result(std::string res, std::error_code e, std::string d, std::optional<bool> p = {}, std::optional<int> os = {})
      : result(std::move(res)), ec(e), detail(std::move(d)), pending(p), os_error(os) {}
  std::string name;
  std::string result; // pass, fail, not_supported, skipped, inconclusive
  std::error_code ec; // what the OS (or portres) answered, if anything
  std::string detail;
  std::optional<bool> pending; // cancellation checks: was the operation pending when cancelled?
  std::optional<int> os_error; // the OS's own code where it is not in `ec` (else taken from `ec`)
};

check_result pass(std::string detail) { return {"pass", {}, std::move(detail)}; }
check_result fail(std::error_code ec, std::string detail) { return {"fail", ec, std::move(detail)}; }

// The OS message, and the portable meaning (Wine's and MinGW's messages for
// Winsock codes are often just "Unknown error code").
std::string describe(const std::error_code& ec) {
  for (const auto c : {portres::condition::not_supported, portres::condition::access_denied, portres::condition::in_use,
                       portres::condition::aborted, portres::condition::invalid_argument, portres::condition::exhausted}) {
    if (ec == c) return ec.message() + " (" + portres::make_error_condition(c).message() + ")";
  }
  return ec.message();
}

// A failure the platform explains (Wine, a system without the API) is not a defect.
check_result failed_or_unsupported(std::error_code ec, const std::string& what) {
  if (ec == portres::condition::not_supported) return {"not_supported", ec, what + ": " + describe(ec)};
  return fail(ec, what + ": " + describe(ec));
}

// The OS's own code in `ec` (a Winsock / Win32 code or an errno), none when
// portres detected the failure itself.
std::optional<int> os_code(const std::error_code& ec) {
  if (!ec) return std::nullopt;
  const auto& c = ec.category();
  if (c == std::system_category() || c == std::generic_category() || c == asio::error::get_system_category()) {
    return ec.value();
  }
  return std::nullopt;
}

check_result inconclusive(std::error_code ec, std::string detail, bool pending) {
  return {"inconclusive", ec, std::move(detail), pending};
}

// Runs `io` until `done` or 5 seconds pass.
template <class Done>
bool run_until(asio::io_context& io, Done done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  io.restart();
  while (!done() && std::chrono::steady_clock::now() < deadline) io.run_for(std::chrono::milliseconds(10));
  return done();
}

// Windows: the code GetProcAddress leaves for the persistent functions
// (ERROR_PROC_NOT_FOUND where the system lacks them, e.g. Wine).
std::optional<int> missing_function_code() {
#if defined(_WIN32)
  const HMODULE iphlpapi = ::LoadLibraryW(L"iphlpapi.dll");
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
  sequence() : ex_(io_.get_executor()) {}

  check_result wildcard_acquire() {
    std::error_code ec;
    block_ = portres::acquire(ex_, portres::protocol::tcp, portres::port_range::wildcard(20), ec);
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
      if (ec) return failed_or_unsupported(ec, "associate socket " + std::to_string(i + 1));
      const auto port = portres::bind(s, ec);
      if (ec) return failed_or_unsupported(ec, "bind socket " + std::to_string(i + 1));
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
    if (ec == portres::condition::exhausted) return {"pass", ec, "21st socket: " + ec.message()};
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
    return {"pass", ec, "released; the old token is refused: " + ec.message()};
  }

  // The handler of an operation still not called after the io_context ran
  // everything ready (poll) waits for the OS: that operation is pending.
  bool still_pending(const int& calls) {
    io_.restart();
    io_.poll();
    return calls == 0;
  }

  check_result cancel_pending() {
    asio::cancellation_signal cancel;
    int calls = 0;
    std::error_code result;
    portres::runtime_reservation got;
    portres::async_acquire(ex_, portres::protocol::tcp, portres::port_range::wildcard(4),
                           asio::bind_cancellation_slot(cancel.slot(), [&](std::error_code ec, portres::runtime_reservation r) {
                             ++calls;
                             result = ec;
                             got = std::move(r);
                           }));
    const bool pending = still_pending(calls);
    cancel.emit(asio::cancellation_type::terminal);
    if (!run_until(io_, [&] { return calls > 0; })) return fail({}, "the cancelled acquire never completed");
    io_.run_for(std::chrono::milliseconds(50));
    if (calls != 1) return fail({}, "handler called " + std::to_string(calls) + " times");
    check_result r;
    if (result == portres::condition::not_supported) {
      r = failed_or_unsupported(result, "acquire");
    } else if (!pending) {
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
    r.pending = pending;
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
    if (!run_until(io_, [&] { return pool.stats().ready == 1; })) return fail({}, "the pool never stocked a socket");
    auto held = pool.try_get(ec);
    if (ec) return fail(ec, "pool: " + ec.message());
    asio::cancellation_signal cancel;
    int calls = 0;
    std::error_code result;
    pool.async_get(asio::bind_cancellation_slot(cancel.slot(), [&](std::error_code e, portres::pooled_socket<tcp>) {
      ++calls;
      result = e;
    }));
    run_until(io_, [&] { return pool.stats().waiters == 1 || calls > 0; });
    const bool pending = still_pending(calls) && pool.stats().waiters == 1;
    cancel.emit(asio::cancellation_type::terminal);
    if (!run_until(io_, [&] { return calls > 0; })) return fail({}, "the cancelled waiter never completed");
    io_.run_for(std::chrono::milliseconds(50));
    if (calls != 1) return fail({}, "handler called " + std::to_string(calls) + " times");
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
    int calls = 0;
    std::error_code result;
    portres::async_associate(s, r.token(), [&](std::error_code e) {
      ++calls;
      result = e;
    });
    const bool pending = still_pending(calls);
    s.close();
    if (!run_until(io_, [&] { return calls > 0; })) return fail({}, "the associate never completed after close");
    io_.run_for(std::chrono::milliseconds(50));
    if (calls != 1) return fail({}, "handler called " + std::to_string(calls) + " times");
    check_result out;
    if (result == portres::condition::not_supported) {
      out = failed_or_unsupported(result, "associate");
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

  check_result socket_reuse() {
    const auto caps = portres::capabilities();
    if (!caps.socket_reuse) return {"not_supported", portres::error::os_unsupported, caps.socket_reuse_reason};
    std::error_code ec;
    auto r = portres::acquire(ex_, portres::protocol::tcp, portres::port_range::wildcard(4), ec);
    if (ec) return failed_or_unsupported(ec, "acquire tcp wildcard(4)");
    tcp::acceptor listener(io_, {asio::ip::address_v4::loopback(), 0});
    portres::socket_pool<tcp>::options o;
    o.low_water = 0;
    o.high_water = 1;
    portres::socket_pool<tcp> pool(ex_, r, asio::ip::address_v4::loopback(), o);
    if (!run_until(io_, [&] { return pool.stats().ready == 1; })) return fail({}, "the pool never stocked a socket");
    auto s = pool.try_get(ec);
    if (ec) return fail(ec, "pool: " + ec.message());
    s->connect(listener.local_endpoint(), ec);
    tcp::socket peer(io_);
    if (!ec) listener.accept(peer, ec);
    if (ec) return fail(ec, "connect: " + ec.message());
    s = {};
    if (!run_until(io_, [&] { return pool.stats().recycled == 1 || pool.stats().recycle_failures == 1; })) {
      return fail({}, "the returned socket was neither recycled nor closed");
    }
    if (pool.stats().recycled != 1) return fail({}, "DisconnectEx(TF_REUSE_SOCKET) failed; the socket was closed");
    // The recycled socket connects again (through ConnectEx: Asio's async_connect), from its port.
    auto again = pool.try_get(ec);
    if (ec) return fail(ec, "pool after recycle: " + ec.message());
    const auto port = again.port();
    bool connected = false;
    std::error_code connect_ec;
    again->async_connect(listener.local_endpoint(), [&](std::error_code e) {
      connect_ec = e;
      connected = true;
    });
    if (!run_until(io_, [&] { return connected; })) return fail({}, "async_connect of the recycled socket never completed");
    if (connect_ec) return fail(connect_ec, "async_connect of the recycled socket: " + describe(connect_ec));
    if (again->local_endpoint(ec).port() != port) return fail(ec, "the recycled socket reconnected from another port");
    return pass("a connected socket was recycled with DisconnectEx(TF_REUSE_SOCKET) and reconnected from port " +
                std::to_string(port));
  }

private:
  static check_result skipped(std::string why) { return {"skipped", {}, std::move(why)}; }

  asio::io_context io_;
  asio::any_io_executor ex_;
  portres::runtime_reservation block_;
  std::vector<tcp::socket> sockets_;
};

// The OS build the report comes from: "10.0.19045" on Windows (RtlGetVersion
// does not lie about the version as GetVersionEx does), the kernel release on Linux.
std::string os_build() {
#if defined(_WIN32)
  using rtl_get_version_fn = LONG(WINAPI*)(OSVERSIONINFOW*);
  const HMODULE ntdll = ::GetModuleHandleW(L"ntdll.dll");
  auto get = ntdll ? reinterpret_cast<rtl_get_version_fn>(reinterpret_cast<void*>(::GetProcAddress(ntdll, "RtlGetVersion")))
                   : nullptr;
  OSVERSIONINFOW v{};
  v.dwOSVersionInfoSize = sizeof v;
  if (!get || get(&v) != 0) return "unknown";
  return std::to_string(v.dwMajorVersion) + "." + std::to_string(v.dwMinorVersion) + "." + std::to_string(v.dwBuildNumber);
#else
  utsname u{};
  return ::uname(&u) == 0 ? u.release : "unknown";
#endif
}

// os_error: the OS's own code (null when the OS gave none: success, or a
// failure portres detected); error: the code the check saw, in its category.
std::string error_json(const check_result& r) {
  const auto os = r.os_error ? r.os_error : os_code(r.ec);
  return "\"os_error\":" + (os ? std::to_string(*os) : std::string("null")) +
         ",\"error\":" + std::to_string(r.ec.value()) + ",\"category\":" + json_string(r.ec ? r.ec.category().name() : "") +
         ",\"message\":" + json_string(r.ec ? r.ec.message() : "") +
         ",\"pending\":" + (r.pending ? (*r.pending ? "true" : "false") : "null");
}

} // namespace

int selftest(bool json) {
  // The native backend, also where automatic selection would not pick it
  // (Wine): the point is what this OS answers.
  std::error_code selected;
  portres::select_backend(portres::backend_kind::native, selected);
  const auto caps = portres::capabilities();
  sequence s;
  std::vector<check_result> results;
  const std::vector<std::pair<const char*, std::function<check_result()>>> checks = {
      {"wildcard_acquire", [&] { return s.wildcard_acquire(); }},
      {"specific_acquire", [&] { return s.specific_acquire(); }},
      {"associate_bind_20", [&] { return s.associate_and_bind_20(); }},
      {"exhausted_21st", [&] { return s.twenty_first_exhausted(); }},
      {"release", [&] { return s.release(); }},
      {"cancel_pending", [&] { return s.cancel_pending(); }},
      {"cancel_pool_waiter", [&] { return s.cancel_pool_waiter(); }},
      {"close_with_pending", [&] { return s.close_with_pending(); }},
      {"ipv6_bind", [&] { return s.ipv6_bind(); }},
      {"persistent", [&] { return s.persistent(); }},
      {"socket_reuse", [&] { return s.socket_reuse(); }},
  };
  int failures = 0;
  for (const auto& [name, run] : checks) {
    check_result r;
    try {
      r = run();
    } catch (const std::exception& e) {
      r = fail({}, std::string("exception: ") + e.what());
    }
    r.name = name;
    failures += r.result == "fail";
    if (!json) {
      const auto os = r.os_error ? r.os_error : os_code(r.ec);
      std::string codes;
      if (r.ec) codes += " [" + std::string(r.ec.category().name()) + ":" + std::to_string(r.ec.value()) + "]";
      if (os) codes += " [os error " + std::to_string(*os) + "]";
      std::printf("%-14s %-20s %s%s\n", r.result.c_str(), name, r.detail.c_str(), codes.c_str());
    }
    results.push_back(std::move(r));
  }
  const char* backend = portres::to_string(portres::active_backend());
  if (json) {
    std::string out = "{\"selftest\":1,\"os\":" + json_string(caps.platform) + ",\"os_build\":" + json_string(os_build()) +
                      ",\"backend\":" + json_string(backend) +
                      ",\"backend_selection\":" + json_string(selected ? selected.message() : "native") +
                      ",\"native_runtime\":" + (caps.native_runtime ? "true" : "false") +
                      ",\"native_runtime_reason\":" + json_string(caps.native_runtime_reason) + ",\"checks\":[";
    for (std::size_t i = 0; i < results.size(); ++i) {
      const auto& r = results[i];
      out += std::string(i ? "," : "") + "{\"name\":" + json_string(r.name) + ",\"result\":" + json_string(r.result) +
             "," + error_json(r) + ",\"detail\":" + json_string(r.detail) + "}";
    }
    std::printf("%s],\"failed\":%d}\n", out.c_str(), failures);
  } else {
    std::printf("os: %s (build %s); backend: %s; %d check(s) failed\n", caps.platform.c_str(), os_build().c_str(), backend,
                failures);
  }
  return failures ? 1 : 0;
}

} // namespace cli
