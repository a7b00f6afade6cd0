// The pool's hot path and the portable core under it: LRU by return time,
// resting ports, bounded bind attempts near full, the EADDRNOTAVAIL retry,
// errors that complete waiters, and initiating calls that never wait.
#include "portres/reservation.hpp"
#include "portres/socket_pool.hpp"
#if defined(__linux__)
#include "portres/linux_error.hpp"
#endif

#include "backend.hpp"
#include "core/port_block.hpp"
#include "core/portable_backend.hpp"
#include "core/registry.hpp"
#include "conformance.hpp"
#include "support.hpp"

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/udp.hpp>

#include <atomic>
#include <cstdio>
#include <chrono>
#include <memory>
#include <system_error>
#include <thread>
#include <vector>

#if !defined(_WIN32)
#include <fcntl.h>
#endif

using namespace portres;
using portres_test::run_until;
using namespace std::chrono_literals;

namespace {
const asio::ip::address loopback = asio::ip::address_v4::loopback();

// Selects the fallback backend for the scope (the tests below count its binds).
struct fallback_scope {
  fallback_scope() { select_backend(backend_kind::fallback); }
  ~fallback_scope() { select_backend(backend_kind::automatic); }
};
} // namespace

TEST_CASE("port_block lru: a port returned later is handed out later, whatever the hand-out order") {
  detail::port_block block(port_range{40000, 4}, port_policy::lru);
  const auto now = detail::port_block::clock::now();
  const auto a = *block.take(now), b = *block.take(now), c = *block.take(now), d = *block.take(now);
  CHECK_FALSE(block.take(now));
  // Handed out a, b, c, d; returned d, b, a, c.
  block.give_back(d, now);
  block.give_back(b, now);
  block.give_back(a, now);
  block.give_back(c, now);
  CHECK(*block.take(now) == d);
  CHECK(*block.take(now) == b);
  CHECK(*block.take(now) == a);
  CHECK(*block.take(now) == c);
}

TEST_CASE("port_block: a recently closed port rests while others are free, and is used when nothing else is") {
  for (const auto policy : {port_policy::lru, port_policy::sequential, port_policy::random}) {
    CAPTURE(static_cast<int>(policy));
    detail::port_block block(port_range{40000, 3}, policy);
    const auto now = detail::port_block::clock::now();
    const auto first = *block.take(now);
    block.give_back(first, now + 1s); // its connection may still be closing
    const auto second = *block.take(now);
    const auto third = *block.take(now);
    CHECK(second != first);
    CHECK(third != first);
    CHECK(*block.take(now) == first); // nothing else is free: the resting port
    CHECK_FALSE(block.take(now));
    // Rested: free again, in return order among the rest (lru).
    block.give_back(first, now + 1s);
    block.give_back(second, now);
    const auto next = *block.take(now + 2s);
    const auto after = *block.take(now + 2s);
    if (policy == port_policy::lru) {
      CHECK(next == first);
      CHECK(after == second);
    }
    CHECK(next != after);
  }
}

TEST_CASE("bind near full: bounded bind attempts (one held-ports query, not a bind per port)") {
  fallback_scope scope;
  asio::io_context io;
  constexpr std::uint16_t count = 256;
  auto r = acquire(io.get_executor(), protocol::udp, port_range::wildcard(count));
  const auto range = r.range();
  const auto spare = gsl::narrow_cast<std::uint16_t>(range.first() + count - 1);
  // Outside binders (not through portres) hold every port but the last.
  std::vector<asio::ip::udp::socket> outside;
  for (std::uint32_t p = range.first(); p < spare; ++p) {
    outside.emplace_back(io, asio::ip::udp::endpoint(loopback, gsl::narrow_cast<std::uint16_t>(p)));
  }
  asio::ip::udp::socket s(io, asio::ip::udp::v4());
  associate(s, r.token());
  const auto before = detail::bind_attempts();
  std::error_code ec;
  const auto port = bind(s, loopback, ec);
  const auto attempts = detail::bind_attempts() - before;
  CHECK(attempts <= 17); // the old code tried each of the 256 ports
#ifdef _WIN32
  // Wine's socket tables do not show the outside binders, so the one free
  // port may not be found; the bound on attempts holds all the same.
  std::printf("SKIPPED: finding the last free port needs the OS's held-ports listing (Wine lacks it)\n");
  return;
#endif
  REQUIRE_FALSE(ec);
  CHECK(port == spare);
  // Full now: the next bind says so after a bounded number of attempts.
  asio::ip::udp::socket t(io, asio::ip::udp::v4());
  associate(t, r.token());
  const auto before_full = detail::bind_attempts();
  bind(t, loopback, ec);
  CHECK(ec == condition::exhausted);
  CHECK(detail::bind_attempts() - before_full <= 16);
}

TEST_CASE("pool: a port comes back when its socket does, and returns later go out later (lru)") {
  fallback_scope scope;
  asio::io_context io;
  auto r = acquire(io.get_executor(), protocol::udp, port_range::wildcard(4));
  socket_pool<asio::ip::udp>::options o;
  o.low_water = 0;
  o.high_water = 0;
  o.policy = port_policy::lru;
  socket_pool<asio::ip::udp> pool(io.get_executor(), r, loopback, o);
  std::vector<pooled_socket<asio::ip::udp>> got;
  for (int i = 0; i < 4; ++i) {
    pool.async_get([&](std::error_code ec, pooled_socket<asio::ip::udp> s) {
      CHECK_FALSE(ec);
      got.push_back(std::move(s));
    });
  }
  REQUIRE(run_until(io, [&] { return got.size() == 4; }));
  const auto p1 = got[1].port(), p3 = got[3].port();
  got[3] = {}; // returned first
  got[1] = {};
  std::vector<std::uint16_t> next;
  for (int i = 0; i < 2; ++i) {
    pool.async_get([&](std::error_code ec, pooled_socket<asio::ip::udp> s) {
      CHECK_FALSE(ec);
      next.push_back(s.port());
      got.push_back(std::move(s));
    });
    REQUIRE(run_until(io, [&] { return next.size() == std::size_t(i + 1); }));
  }
  CHECK(next == std::vector<std::uint16_t>{p3, p1});
}

TEST_CASE("pool: a permanent creation error completes every waiter with it") {
  asio::io_context io;
  PORTRES_FOR_EACH_BACKEND(kind) {
    portres_test::backend_scope scope(kind, io);
    auto r = acquire(io.get_executor(), protocol::udp, port_range::wildcard(8));
    socket_pool<asio::ip::udp> pool(io.get_executor(), r, loopback);
    r.release(); // the pool's token now names a released reservation
    std::vector<std::error_code> results;
    for (int i = 0; i < 3; ++i) {
      pool.async_get([&](std::error_code ec, pooled_socket<asio::ip::udp> s) {
        CHECK_FALSE(s);
        results.push_back(ec);
      });
    }
    CHECK(run_until(io, [&] { return results.size() == 3; }, 5s));
    for (const auto& ec : results) CHECK(ec);
    CHECK(pool.stats().waiters == 0);
  }
}

TEST_CASE("pool: an exhausted block is retried with backoff, and a waiter is served when a port comes back") {
  fallback_scope scope;
  asio::io_context io;
  auto r = acquire(io.get_executor(), protocol::udp, port_range::wildcard(2));
  socket_pool<asio::ip::udp>::options o;
  o.low_water = 0;
  o.high_water = 0;
  socket_pool<asio::ip::udp> pool(io.get_executor(), r, loopback, o);
  std::vector<pooled_socket<asio::ip::udp>> got;
  int calls = 0;
  for (int i = 0; i < 3; ++i) {
    pool.async_get([&](std::error_code ec, pooled_socket<asio::ip::udp> s) {
      ++calls;
      CHECK_FALSE(ec);
      got.push_back(std::move(s));
    });
  }
  REQUIRE(run_until(io, [&] { return got.size() == 2; }));
  run_until(io, [] { return false; }, 300ms); // the third waits: the block is full
  CHECK(calls == 2);
  const auto retries = pool.stats().exhausted_events;
  CHECK(retries >= 1);
  CHECK(retries <= 10); // backing off (a fixed 5 ms retry would be ~60)
  got[0] = {};
  CHECK(run_until(io, [&] { return calls == 3; }));
}

TEST_CASE("pool: async_connect retries on another port when connect says EADDRNOTAVAIL") {
#ifdef _WIN32
  PORTRES_SKIP("Linux's 4-tuple check (EADDRNOTAVAIL at connect) is what this test provokes");
#else
  fallback_scope scope;
  asio::io_context io;
  asio::ip::tcp::acceptor listener(io, asio::ip::tcp::endpoint(loopback, 0));
  std::vector<asio::ip::tcp::socket> accepted;
  std::function<void()> accept_next = [&] {
    listener.async_accept([&](std::error_code ec, asio::ip::tcp::socket s) {
      if (ec) return;
      accepted.push_back(std::move(s));
      accept_next();
    });
  };
  accept_next();
  auto r = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(4));
  // An outside socket already has (first port, listener) as its 4-tuple.
  asio::ip::tcp::socket outside(io, asio::ip::tcp::v4());
  outside.set_option(asio::socket_base::reuse_address(true));
  outside.bind(asio::ip::tcp::endpoint(loopback, r.range().first()));
  outside.connect(listener.local_endpoint());
  socket_pool<asio::ip::tcp>::options o;
  o.low_water = 1;
  o.high_water = 1;
  o.configure = [](asio::ip::tcp::socket& s, std::error_code& ec) {
    s.set_option(asio::socket_base::reuse_address(true), ec);
  };
  socket_pool<asio::ip::tcp> pool(io.get_executor(), r, loopback, o);
  int calls = 0;
  std::error_code result;
  std::uint16_t port = 0;
  pool.async_connect(listener.local_endpoint(), [&](std::error_code ec, pooled_socket<asio::ip::tcp> s) {
    ++calls;
    result = ec;
    if (s) port = s.port();
  });
  REQUIRE(run_until(io, [&] { return calls == 1; }));
  CHECK_FALSE(result);
  CHECK(port != r.range().first());
  CHECK(r.range().contains(port));
#endif
}

namespace {
// A registry whose every call takes a while and notes the thread it ran on.
class slow_registry final : public detail::registry {
public:
  std::atomic<std::thread::id> grant_thread{}, release_thread{}, lookup_thread{};

  std::unique_ptr<lease> grant(protocol, port_range request, reservation_token, detail::blocking, port_range& granted,
                               std::error_code& ec) override {
    grant_thread = std::this_thread::get_id();
    std::this_thread::sleep_for(50ms);
    ec.clear();
    granted = request.is_wildcard() ? port_range{41000, request.count()} : request;
    return std::make_unique<lease>();
  }
  void release(lease&, detail::blocking, std::error_code& ec) override {
    release_thread = std::this_thread::get_id();
    std::this_thread::sleep_for(50ms);
    ec.clear();
  }
  std::error_code classify_unknown(reservation_token, detail::blocking) override {
    lookup_thread = std::this_thread::get_id();
    std::this_thread::sleep_for(50ms);
    return error::unknown_token;
  }
  std::optional<port_range> persistent_block(protocol, reservation_token, detail::blocking,
                                             std::error_code& ec) override {
    lookup_thread = std::this_thread::get_id();
    std::this_thread::sleep_for(50ms);
    ec.clear();
    return std::nullopt;
  }
  std::error_code persistent_access() const override { return {}; }
};

// What a lease reports once lost: on Linux the broker's code; elsewhere no
// lease is ever lost, and any code stands for it.
#if defined(__linux__)
const std::error_code lost_code = linux_error::reservation_lost;
#else
const std::error_code lost_code = std::make_error_code(std::errc::operation_canceled);
#endif

// A registry whose grants end without a release once `lose` is set (as when
// portresd goes away).
class losing_registry final : public detail::registry {
public:
  std::atomic<bool> lose{false};

  class losing_lease final : public lease {
  public:
    explicit losing_lease(const std::atomic<bool>& lost) : lost_(lost) {}
    std::error_code lost() override { return lost_ ? lost_code : std::error_code(); }

  private:
    const std::atomic<bool>& lost_;
  };

  std::unique_ptr<lease> grant(protocol, port_range request, reservation_token, detail::blocking, port_range& granted,
                               std::error_code& ec) override {
    ec.clear();
    granted = request.is_wildcard() ? port_range{41000, request.count()} : request;
    return std::make_unique<losing_lease>(lose);
  }
  void release(lease&, detail::blocking, std::error_code& ec) override { ec.clear(); }
  std::error_code classify_unknown(reservation_token, detail::blocking) override { return error::unknown_token; }
  std::optional<port_range> persistent_block(protocol, reservation_token, detail::blocking,
                                             std::error_code& ec) override {
    ec.clear();
    return std::nullopt;
  }
  std::error_code persistent_access() const override { return {}; }
};

struct installed_backend {
  explicit installed_backend(detail::backend& b) : previous(detail::replace_active(&b)) {}
  ~installed_backend() { detail::replace_active(previous); }
  detail::backend* previous;
};
} // namespace

TEST_CASE("async_acquire, async_release and async_associate never wait on the initiating thread") {
  asio::io_context io;
  auto slow = std::make_shared<slow_registry>();
  detail::portable_backend backend(backend_kind::fallback, slow);
  installed_backend installed(backend);
  const auto caller = std::this_thread::get_id();

  runtime_reservation r;
  int acquired = 0;
  async_acquire(io.get_executor(), protocol::udp, port_range::wildcard(8),
                [&](std::error_code ec, runtime_reservation got) {
                  CHECK_FALSE(ec);
                  r = std::move(got);
                  ++acquired;
                });
  CHECK(slow->grant_thread.load() != caller); // not run inline (it may not have run yet)
  REQUIRE(run_until(io, [&] { return acquired == 1; }));
  CHECK(slow->grant_thread.load() != caller);
  CHECK(slow->grant_thread.load() != std::thread::id{});

  // An unknown token means reading the registry: on the blocking pool.
  asio::ip::udp::socket s(io, asio::ip::udp::v4());
  int associated = 0;
  async_associate(s, reservation_token{0x1234567}, [&](std::error_code ec) {
    CHECK(ec == error::unknown_token);
    ++associated;
  });
  CHECK(slow->lookup_thread.load() != caller);
  REQUIRE(run_until(io, [&] { return associated == 1; }));
  CHECK(slow->lookup_thread.load() != caller);
  CHECK(slow->lookup_thread.load() != std::thread::id{});

  int released = 0;
  r.async_release([&](std::error_code ec) {
    CHECK_FALSE(ec);
    ++released;
  });
  CHECK(slow->release_thread.load() != caller);
  REQUIRE(run_until(io, [&] { return released == 1; }));
  CHECK(slow->release_thread.load() != caller);
  CHECK(slow->release_thread.load() != std::thread::id{});
}

TEST_CASE("pool: a lost reservation (its broker gone) completes every waiter, within a retry") {
  asio::io_context io;
  auto losing = std::make_shared<losing_registry>();
  detail::portable_backend backend(backend_kind::fallback, losing);
  installed_backend installed(backend);
  auto r = acquire(io.get_executor(), protocol::udp, port_range::wildcard(1));
  socket_pool<asio::ip::udp>::options o;
  o.low_water = 0;
  o.high_water = 1;
  socket_pool<asio::ip::udp> pool(io.get_executor(), r, loopback, o);
  pooled_socket<asio::ip::udp> held;
  REQUIRE(run_until(io, [&] {
    std::error_code ec;
    if (!held) held = pool.try_get(ec);
    return static_cast<bool>(held);
  }));
  std::vector<std::error_code> results;
  for (int i = 0; i < 2; ++i) {
    pool.async_get([&](std::error_code ec, pooled_socket<asio::ip::udp> s) {
      CHECK_FALSE(s);
      results.push_back(ec);
    });
  }
  run_until(io, [] { return false; }, 50ms);
  REQUIRE(results.empty()); // waiting: the held socket's port comes back
  losing->lose = true;
  CHECK(run_until(io, [&] { return results.size() == 2; }, 2s)); // the retry timer checks, at most 1 s apart
  for (const auto& ec : results) {
    CHECK(ec == lost_code);
    CHECK(ec == condition::aborted);
  }
  std::error_code later;
  pool.async_get([&](std::error_code ec, pooled_socket<asio::ip::udp>) { later = ec; });
  CHECK(run_until(io, [&] { return static_cast<bool>(later); }, 200ms));
  CHECK(later == lost_code);
}

#if !defined(_WIN32)
TEST_CASE("pool: its sockets are not inherited by child processes (close-on-exec)") {
  asio::io_context io;
  PORTRES_FOR_EACH_BACKEND(kind) {
    portres_test::backend_scope scope(kind, io);
    auto r = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(4));
    socket_pool<asio::ip::tcp> pool(io.get_executor(), r, loopback);
    std::error_code ec;
    pooled_socket<asio::ip::tcp> s;
    REQUIRE(run_until(io, [&] {
      if (!s) s = pool.try_get(ec);
      return static_cast<bool>(s);
    }));
    const int flags = ::fcntl(s->native_handle(), F_GETFD);
    CHECK(flags >= 0);
    CHECK((flags & FD_CLOEXEC) != 0);
  }
}
#endif
