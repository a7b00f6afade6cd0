// The compiled core of socket_pool<Protocol> (lib/src/core/pool_core.cpp):
// the stock, the waiters, the refill and the port accounting, on native
// sockets. The Protocol template on top (impl/socket_pool.hpp) only wraps
// native sockets into Asio sockets and connects them, as Asio pairs
// reactive_socket_service_base with reactive_socket_service<Protocol>.
#ifndef PORTRES_DETAIL_POOL_CORE_HPP
#define PORTRES_DETAIL_POOL_CORE_HPP

#include "portres/detail/destination.hpp"
#include "portres/detail/runtime_state.hpp"
#include "portres/types.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/ip/address.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace portres {

/// A snapshot of a pool's counters.
struct pool_stats {
  std::size_t ready = 0;             ///< sockets in stock
  std::size_t in_use = 0;            ///< handed out and not yet returned
  std::size_t waiters = 0;           ///< async_get and async_connect calls waiting for a socket
  std::size_t connections = 0;       ///< of in_use: handed out by async_connect (live connections)
  std::size_t destinations = 0;      ///< peers those connections go to
  std::uint64_t hits = 0;            ///< gets and connects served at once (stock, or a port free towards the peer)
  std::uint64_t misses = 0;          ///< gets and connects that had to wait
  std::uint64_t refills = 0;         ///< sockets created
  std::uint64_t exhausted_events = 0; ///< creations stopped because the block had no port free (towards the peer)
  std::uint64_t creation_failures = 0; ///< sockets that could not be created for other reasons
  std::uint64_t connect_retries = 0; ///< connects retried on another port after EADDRNOTAVAIL
  std::uint64_t recycled = 0;        ///< TCP sockets back in stock after a disconnect for reuse (Windows)
  std::uint64_t recycle_failures = 0; ///< disconnects for reuse that failed (the socket was closed)
};

namespace detail {

/// A pool's socket as the core sees it; the Protocol template derives the
/// holder of the Asio socket.
class pool_socket {
public:
  virtual ~pool_socket() = default;
  virtual native_socket handle() const noexcept = 0;
  virtual bool is_open() const noexcept = 0;
  virtual void close() noexcept = 0;
  /// Has a remote endpoint (reuse after a disconnect needs one).
  virtual bool connected() const noexcept = 0;
  /// The bound port, 0 when unknown.
  virtual std::uint16_t local_port() const noexcept = 0;
};

class pool_core;

/// What a pooled_socket holds: its socket, its port and what it counts against.
struct pool_lease {
  std::shared_ptr<pool_core> pool;
  std::unique_ptr<pool_socket> socket;
  std::uint16_t port = 0;
  asio::ip::address source;            ///< the local address it is bound to
  bool shared = false;                 ///< its port carries one connection per destination
  std::optional<destination> towards;  ///< set for async_connect: the destination it counts against
};

/// A get or connect waiting in the core; the template completes the user's handler.
class pool_waiter {
public:
  virtual ~pool_waiter() = default;
  /// Called once, outside the pool's lock (a connect then starts connecting).
  virtual void complete(std::error_code ec, pool_lease lease) = 0;
  virtual asio::cancellation_slot slot() const noexcept = 0;
};

struct pool_settings {
  std::size_t low_water = 8;
  std::size_t high_water = 32;
  std::size_t max_waiters = 1024;
  std::chrono::milliseconds rest_interval{1000};
};

struct pool_blocking_gate;

class pool_core : public std::enable_shared_from_this<pool_core>, public reservation_watcher {
public:
  /// `keep`: the runtime reservation (null for a persistent token).
  /// Throws std::system_error (invalid_argument) when `sources` is empty.
  pool_core(const asio::any_io_executor& ex, state_ptr keep, reservation_token token, protocol p,
            std::vector<asio::ip::address> sources, pool_settings settings);
  virtual ~pool_core();
  pool_core(const pool_core&) = delete;
  pool_core& operator=(const pool_core&) = delete;

  const asio::any_io_executor& executor() const noexcept { return executor_; }
  /// Starts the warm-up (after construction: it needs shared_from_this).
  void start();

  /// A socket on a port nobody else uses (async_get).
  void get(std::unique_ptr<pool_waiter> w);
  /// A socket bound to a port free towards the peer (async_connect); where
  /// ports are not shared (UDP, the Windows engine), as get().
  void get_towards(const asio::ip::address& peer, std::uint16_t peer_port, std::unique_ptr<pool_waiter> w);
  /// A socket from stock, or an empty lease with `ec` == operation_would_block.
  pool_lease try_get(std::error_code& ec);
  void close();
  pool_stats stats() const;
  destination_headroom headroom(const asio::ip::address& peer, std::uint16_t peer_port) const;

  /// A pooled socket came back: closed (or, on Windows, disconnected for reuse).
  void give_back(pool_lease& lease) noexcept;
  /// A pooled socket (`handle`) went to its user for good.
  void hand_over(pool_lease& lease, native_socket handle) noexcept;
  void connect_retried() noexcept;

  void reservation_ended(std::error_code why) noexcept override;

protected:
  /// Wraps a socket the core opened into the Protocol's socket (the family
  /// of `ipv6`) and applies the user's options; the core binds it after.
  /// On failure the handle is closed.
  virtual std::unique_ptr<pool_socket> wrap(native_socket s, bool ipv6, std::error_code& ec) = 0;

private:
  struct stock_entry {
    std::unique_ptr<pool_socket> socket;
    std::uint16_t port;
    asio::ip::address source;
  };
  struct waiter_entry {
    std::uint64_t id;
    std::optional<destination> towards; // peer only (source unset)
    std::unique_ptr<pool_waiter> waiter;
  };
  // What one socket creation is for: stock (exclusive port) or a connect
  // towards a peer (shared port).
  struct job {
    std::optional<destination> towards;
  };
  struct creation {
    std::unique_ptr<pool_socket> socket;
    std::uint16_t port = 0;
    asio::ip::address source;
    std::error_code ec;
  };
  enum class outcome { served, blocked, stopped };
  struct failed_waiter {
    std::unique_ptr<pool_waiter> waiter;
    std::error_code ec;
  };

  // pool_core.cpp: handing out, waiting, returning.
  using clock = std::chrono::steady_clock;
  std::optional<pool_lease> take_ready_locked(const std::optional<destination>& towards);
  pool_lease lease_locked(stock_entry entry, const std::optional<destination>& towards, bool bound_towards);
  bool settle_locked(std::unique_lock<std::mutex>& lock, std::unique_ptr<pool_waiter>& w,
                     const std::optional<destination>& towards);
  void wait_for_socket(std::unique_ptr<pool_waiter> w, std::optional<destination> towards);
  void enqueue_locked(std::deque<waiter_entry>& queue, std::optional<destination> towards,
                      std::unique_ptr<pool_waiter> w);
  void cancel_waiter(std::uint64_t id);
  void shut(std::error_code why);
  void returned(pool_lease& lease, bool give_port_back) noexcept;
  bool could_serve_locked(const std::optional<destination>& towards) const;
  std::vector<asio::ip::address> sources_for(const asio::ip::address& peer) const;
  std::error_code reservation_status();

  // pool_refill.cpp: creating sockets.
  void schedule_refill_locked();
  void schedule_retry_locked();
  std::optional<job> next_job_locked() const;
  void refill();
  creation create(const job& j, bool may_block);
  void bind(const job& j, creation& c, bool may_block);
  outcome finish(const job& j, creation c, bool chain);
  void fail_locked(std::deque<waiter_entry>& queue, const std::optional<destination>& towards, std::error_code ec,
                   std::vector<failed_waiter>& out);
  void serve_or_stock(std::unique_lock<std::mutex>& lock, stock_entry entry);
  void bind_on_blocking_pool(job j, creation c);
  void associate_then_bind(creation c);
  bool recycle(pool_lease& lease);
  void on_recycled(pool_lease lease, std::error_code ec);

  mutable std::mutex mutex_;
  asio::any_io_executor executor_;
  state_ptr keep_; // keeps a runtime block alive while the pool or its sockets live
  reservation_token token_;
  protocol protocol_;
  std::vector<asio::ip::address> sources_;
  pool_settings settings_;
  bool sharing_ = false;         // TCP ports carry one connection per destination
  bool reuse_ = false;           // TCP sockets are disconnected for reuse rather than closed
  bool associate_first_ = false; // the backend has no fast path (only touched by the refill chain)
  std::deque<stock_entry> ready_;
  std::deque<waiter_entry> waiters_;    // gets (and connects where ports are exclusive), first come first served
  std::deque<waiter_entry> connecting_; // connects waiting for a port free towards their peer
  std::size_t in_use_ = 0;
  std::size_t exclusive_in_use_ = 0; // of in_use_: on ports nobody else uses
  std::unordered_map<destination, std::size_t, destination_hash> live_;    // connections per peer
  std::unordered_map<destination, std::size_t, destination_hash> queued_;  // connecting_ per peer
  std::unordered_set<destination, destination_hash> blocked_; // peers found exhausted since the last return
  bool exclusive_blocked_ = false;                             // the same for a port nobody uses
  std::size_t next_source_ = 0;
  std::uint64_t next_waiter_id_ = 0;
  bool refill_scheduled_ = false;
  bool closed_ = false;
  std::error_code why_; // what gets and connects complete with once closed_
  std::chrono::milliseconds retry_delay_;
  std::vector<pool_socket*> recycling_;   // sockets whose disconnect is pending
  std::unique_ptr<pool_socket> pending_;  // a socket whose overlapped associate is under way
  pool_stats counters_;
  asio::steady_timer retry_;
  std::shared_ptr<pool_blocking_gate> gate_;
};

} // namespace detail
} // namespace portres

#endif
