// Operations that run on the library's blocking pool and the io_context they
// complete on: destroying the io_context as soon as the handler ran, or while
// the operation is still under way, must neither crash (ASan, TSan) nor hang,
// and a handler that can no longer run is destroyed without being invoked.
#include "portres/association.hpp"
#include "portres/reservation.hpp"
#include "portres/socket_pool.hpp"

#include "backend.hpp"
#include "core/portable_backend.hpp"
#include "core/registry.hpp"
#include "support.hpp"

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/udp.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

using namespace portres;
using namespace std::chrono_literals;

namespace {
// A registry in memory whose grant can be held at a gate, so that a test
// knows an acquire is under way on the blocking pool.
class gated_registry final : public detail::registry {
public:
  std::atomic<int> grants{0}, releases{0}, lookups{0}, persistent_lookups{0};
  std::atomic<int> port_base{43000};

  void hold_grants() {
    std::lock_guard lock(mutex_);
    held_ = true;
  }
  void open_gate() {
    std::lock_guard lock(mutex_);
    held_ = false;
    changed_.notify_all();
  }
  /// Waits (bounded) until a grant is held at the gate.
  bool wait_for_grant_at_gate() {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 10s, [&] { return waiting_ > 0; });
  }

  std::unique_ptr<lease> grant(protocol, port_range request, reservation_token, detail::blocking, port_range& granted,
                               std::error_code& ec) override {
    {
      std::unique_lock lock(mutex_);
      ++waiting_;
      changed_.notify_all();
      changed_.wait(lock, [&] { return !held_; });
      --waiting_;
    }
    ++grants;
    ec.clear();
    granted = request.is_wildcard() ? port_range{static_cast<std::uint16_t>(port_base.load()), request.count()}
                                    : request;
    return std::make_unique<counted_lease>(releases);
  }
  void release(lease& l, detail::blocking, std::error_code& ec) override {
    static_cast<counted_lease&>(l).release();
    ec.clear();
  }
  std::error_code classify_unknown(reservation_token, detail::blocking) override {
    ++lookups;
    return error::unknown_token;
  }
  std::optional<port_range> persistent_block(protocol, reservation_token token, detail::blocking,
                                             std::error_code& ec) override {
    ++persistent_lookups;
    ec.clear();
    if (token == persistent_token) return port_range{static_cast<std::uint16_t>(port_base.load() + 100), 16};
    return std::nullopt;
  }
  std::error_code persistent_access() const override { return {}; }

  static constexpr reservation_token persistent_token{0x7e57000000000001ULL};

private:
  struct counted_lease final : lease {
    explicit counted_lease(std::atomic<int>& n) : releases(n) {}
    ~counted_lease() override { release(); }
    void release() {
      if (!released) ++releases;
      released = true;
    }
    std::atomic<int>& releases;
    bool released = false;
  };

  std::mutex mutex_;
  std::condition_variable changed_;
  bool held_ = false;
  int waiting_ = 0;
};

struct installed_backend {
  explicit installed_backend(detail::backend& b) : previous(detail::replace_active(&b)) {}
  ~installed_backend() { detail::replace_active(previous); }
  detail::backend* previous;
};

// Runs `io` until `done` is set (bounded); the io_context is then destroyed
// at once by the caller, as a user's scope would.
bool run_until_set(asio::io_context& io, const std::atomic<bool>& done) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!done && std::chrono::steady_clock::now() < deadline) io.run_one_for(10ms);
  return done;
}

constexpr int rounds = 300;
} // namespace

TEST_CASE("lifetime: io_contexts destroyed right after their blocking-pool handler are never touched again") {
  auto registry = std::make_shared<gated_registry>();
  detail::portable_backend backend(backend_kind::fallback, registry);
  installed_backend installed(backend);

  SUBCASE("async_acquire") {
    for (int i = 0; i < rounds; ++i) {
      auto io = std::make_unique<asio::io_context>();
      std::atomic<bool> done{false};
      async_acquire(io->get_executor(), protocol::tcp, port_range::wildcard(1),
                    [&done](std::error_code ec, runtime_reservation) {
                      CHECK_FALSE(ec);
                      done = true;
                    });
      REQUIRE(run_until_set(*io, done));
      io.reset(); // at once: ASan/TSan report any later use of it
    }
    CHECK(registry->grants == rounds);
  }
  SUBCASE("async_release") {
    for (int i = 0; i < rounds; ++i) {
      auto io = std::make_unique<asio::io_context>();
      std::error_code ec;
      auto r = acquire(io->get_executor(), protocol::tcp, port_range::wildcard(1), ec);
      REQUIRE_FALSE(ec);
      std::atomic<bool> done{false};
      r.async_release([&done](std::error_code e) {
        CHECK_FALSE(e);
        done = true;
      });
      REQUIRE(run_until_set(*io, done));
      io.reset();
    }
    CHECK(registry->releases == rounds);
  }
  SUBCASE("async_associate (a token looked up on the blocking pool)") {
    for (int i = 0; i < rounds; ++i) {
      auto io = std::make_unique<asio::io_context>();
      std::atomic<bool> done{false};
      {
        asio::ip::udp::socket s(*io, asio::ip::udp::v4());
        async_associate(s, reservation_token{0x1234567}, [&done](std::error_code e) {
          CHECK(e == error::unknown_token);
          done = true;
        });
        REQUIRE(run_until_set(*io, done));
      }
      io.reset();
    }
    CHECK(registry->lookups == rounds);
  }
  SUBCASE("socket_pool: a persistent token's first bind runs on the blocking pool") {
    for (int i = 0; i < rounds / 10; ++i) {
      auto io = std::make_unique<asio::io_context>();
      // A new backend each round: the token's block is looked up again.
      detail::portable_backend fresh(backend_kind::fallback, registry);
      installed_backend round(fresh);
      std::atomic<bool> done{false};
      {
        socket_pool<asio::ip::tcp> pool(io->get_executor(), gated_registry::persistent_token,
                                        asio::ip::address_v4::loopback(), socket_pool<asio::ip::tcp>::options{});
        pool.async_get([&done](std::error_code e, pooled_socket<asio::ip::tcp>) {
          CHECK_FALSE(e);
          done = true;
        });
        REQUIRE(run_until_set(*io, done));
      }
      io.reset();
    }
    CHECK(registry->persistent_lookups == rounds / 10);
  }
}

TEST_CASE("lifetime: an io_context destroyed while an acquire is under way neither crashes nor hangs") {
  auto registry = std::make_shared<gated_registry>();
  detail::portable_backend backend(backend_kind::fallback, registry);
  installed_backend installed(backend);

  auto io = std::make_unique<asio::io_context>();
  auto handler_alive = std::make_shared<int>(0);
  std::atomic<bool> invoked{false};
  registry->hold_grants();
  async_acquire(io->get_executor(), protocol::udp, port_range::wildcard(4),
                [alive = handler_alive, &invoked](std::error_code, runtime_reservation) { invoked = true; });
  REQUIRE(registry->wait_for_grant_at_gate()); // the acquire is on the blocking pool now
  CHECK(handler_alive.use_count() == 2);

  // The destructor waits for the acquire (it must not touch a destroyed
  // context); the gate opens meanwhile from another thread.
  std::thread opener([&] {
    std::this_thread::sleep_for(100ms);
    registry->open_gate();
  });
  io.reset();
  opener.join();

  CHECK_FALSE(invoked);
  CHECK(handler_alive.use_count() == 1); // destroyed, never invoked
  CHECK(registry->grants == 1);
  CHECK(registry->releases == 1); // the reservation nobody received was released
}

namespace {
// A service that runs a callback when its io_context shuts down (created
// before the library's own service, so it shuts down after it).
struct shutdown_probe final : asio::detail::execution_context_service_base<shutdown_probe> {
  explicit shutdown_probe(asio::execution_context& c) : execution_context_service_base<shutdown_probe>(c) {}
  void shutdown() override {
    if (on_shutdown) on_shutdown();
  }
  std::function<void()> on_shutdown;
};
} // namespace

TEST_CASE("lifetime: an operation started while its io_context is being destroyed completes nowhere, cleanly") {
  auto registry = std::make_shared<gated_registry>();
  detail::portable_backend backend(backend_kind::fallback, registry);
  installed_backend installed(backend);

  auto io = std::make_unique<asio::io_context>();
  auto& probe = asio::use_service<shutdown_probe>(*io);
  // One operation first, so that the library's service exists (after the probe).
  std::atomic<bool> first{false};
  async_acquire(io->get_executor(), protocol::tcp, port_range::wildcard(1),
                [&first](std::error_code, runtime_reservation) { first = true; });
  REQUIRE(run_until_set(*io, first));

  auto handler_alive = std::make_shared<int>(0);
  std::atomic<bool> invoked{false};
  probe.on_shutdown = [&, ex = io->get_executor()] {
    async_acquire(ex, protocol::tcp, port_range::wildcard(1),
                  [alive = handler_alive, &invoked](std::error_code, runtime_reservation) { invoked = true; });
  };
  io.reset();
  std::this_thread::sleep_for(50ms); // a job wrongly started would run by now
  CHECK_FALSE(invoked);
  CHECK(handler_alive.use_count() == 1);
  CHECK(registry->grants == 1); // the late operation never started
}

TEST_CASE("lifetime: acquire, associate, release chains on many short-lived io_contexts all complete") {
  // Several threads, each running chains on io_contexts of their own that end
  // as soon as the chain does; every completion must arrive (bounded wait).
  select_backend(backend_kind::fallback);
  constexpr int threads = 3, chains = 40;
  std::atomic<int> completed{0}, lost{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      for (int i = 0; i < chains; ++i) {
        auto io = std::make_unique<asio::io_context>();
        std::atomic<bool> done{false};
        auto socket = std::make_shared<asio::ip::udp::socket>(*io, asio::ip::udp::v4());
        async_acquire(io->get_executor(), protocol::udp, port_range::wildcard(4),
                      [&done, socket](std::error_code ec, runtime_reservation r) {
                        if (ec) {
                          done = true;
                          return;
                        }
                        auto held = std::make_shared<runtime_reservation>(std::move(r));
                        async_associate(*socket, held->token(), [&done, held, socket](std::error_code) {
                          held->async_release([&done, held](std::error_code) { done = true; });
                        });
                      });
        if (run_until_set(*io, done)) {
          ++completed;
        } else {
          ++lost;
        }
        socket.reset();
        io.reset();
      }
    });
  }
  for (auto& w : workers) w.join();
  select_backend(backend_kind::automatic);
  CHECK(lost == 0);
  CHECK(completed == threads * chains);
}
