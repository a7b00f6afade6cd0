// A pool of ready sockets: opened, associated with a reservation and bound to
// one of its ports, handed out without a system call on the hot path.
#ifndef PORTRES_SOCKET_POOL_HPP
#define PORTRES_SOCKET_POOL_HPP

#include "portres/association.hpp"
#include "portres/reservation.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/ip/address.hpp>

#include <gsl/gsl>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <system_error>

namespace portres {

/// A snapshot of a pool's counters.
struct pool_stats {
  std::size_t ready = 0;             ///< sockets in stock
  std::size_t in_use = 0;            ///< handed out and not yet returned
  std::size_t waiters = 0;           ///< async_get calls waiting for a socket
  std::uint64_t hits = 0;            ///< gets served from stock
  std::uint64_t misses = 0;          ///< gets that had to wait
  std::uint64_t refills = 0;         ///< sockets created
  std::uint64_t exhausted_events = 0; ///< refills stopped because the block had no free port
  std::uint64_t creation_failures = 0; ///< sockets that could not be created for other reasons
  std::uint64_t recycled = 0;        ///< TCP sockets back in stock after a disconnect for reuse (Windows)
  std::uint64_t recycle_failures = 0; ///< disconnects for reuse that failed (the socket was closed)
};

namespace detail {
template <class Protocol>
class pool_state;
}

template <class Protocol>
class socket_pool;

/// A socket from a pool. Move-only. Destroying it closes the socket and its
/// port goes back to the block (the pool then refills); release() hands the
/// socket over for good.
template <class Protocol>
class pooled_socket {
public:
  using socket_type = typename Protocol::socket;

  pooled_socket() = default;
  pooled_socket(pooled_socket&&) noexcept = default;
  pooled_socket& operator=(pooled_socket&& other) noexcept;
  ~pooled_socket();

  explicit operator bool() const noexcept { return socket_ != nullptr; }
  /// Ready for async_connect (TCP) or send_to/receive_from (UDP).
  socket_type& socket() noexcept { return *socket_; }
  socket_type* operator->() noexcept { return socket_.get(); }
  /// The local port, from the pool's block.
  std::uint16_t port() const noexcept { return port_; }
  /// `peer` in the form this socket reaches it: an IPv4 peer as its
  /// v4-mapped IPv6 address when the socket is IPv6. On Windows (native
  /// engine) pool sockets are dual-mode IPv6, bound to the v4-mapped form of
  /// an IPv4 local address: connect (or send) them to peer_endpoint(p), not
  /// p. socket_pool::async_connect does this itself.
  typename Protocol::endpoint peer_endpoint(const typename Protocol::endpoint& peer) const;
  /// Takes the socket out of the pool's accounting; the caller owns it now.
  socket_type release();

private:
  friend class detail::pool_state<Protocol>;
  pooled_socket(std::shared_ptr<detail::pool_state<Protocol>> pool, std::unique_ptr<socket_type> socket,
                std::uint16_t port) noexcept
      : pool_(std::move(pool)), socket_(std::move(socket)), port_(port) {}
  void give_back() noexcept;

  std::shared_ptr<detail::pool_state<Protocol>> pool_;
  std::unique_ptr<socket_type> socket_;
  std::uint16_t port_ = 0;
};

/// Pre-associated, pre-bound sockets on demand, for asio::ip::tcp or
/// asio::ip::udp. Safe to use from several threads running the executor's
/// context.
template <class Protocol>
class socket_pool {
public:
  using socket_type = typename Protocol::socket;
  using socket_options = std::function<void(socket_type&, std::error_code&)>;

  struct options {
    std::size_t low_water = 8;    ///< refill in the background below this many ready sockets
    std::size_t high_water = 32;  ///< warm-up and refills fill up to this many
    port_policy policy = port_policy::sequential;
    std::size_t max_waiters = 1024; ///< more waiters than this: condition::exhausted at once
    socket_options configure;     ///< applied to each new socket before it is bound (e.g. SO_LINGER)
    /// TCP: a port whose socket came back closed rests this long (its last
    /// connection may still be in FIN_WAIT) before reuse while other ports are free.
    std::chrono::milliseconds rest_interval{1000};
  };

  /// How many times async_connect retries with another socket.
  static constexpr int connect_retries = 3;

  /// Draws from a runtime reservation the pool shares (it stays alive while
  /// the pool or any of its sockets lives). The pool sets the block's policy.
  socket_pool(const asio::any_io_executor& ex, const runtime_reservation& reservation,
              const asio::ip::address& local, options opts);
  socket_pool(const asio::any_io_executor& ex, const runtime_reservation& reservation,
              const asio::ip::address& local)
      : socket_pool(ex, reservation, local, options{}) {}
  /// Draws from a persistent reservation's token (needs the same rights as associating it).
  socket_pool(const asio::any_io_executor& ex, reservation_token persistent, const asio::ip::address& local,
              options opts);
  socket_pool(const socket_pool&) = delete;
  socket_pool& operator=(const socket_pool&) = delete;
  /// Closes the pool (see close()).
  ~socket_pool();

  const asio::any_io_executor& get_executor() const noexcept { return executor_; }

  /// Gets a ready socket.
  ///
  /// @param token completion token, signature
  ///        `void(std::error_code, portres::pooled_socket<Protocol>)`.
  /// With stock the handler is posted at once (no socket is created, no
  /// system call). Without, the call waits first-come first-served for a
  /// returned or newly created socket; a block that has run out is no error
  /// for a waiter. Errors: condition::exhausted (error::too_many_waiters)
  /// when max_waiters are already waiting; condition::aborted after close()
  /// or on per-operation cancellation (any type) while waiting.
  /// Like Asio's own operations, the handler is posted to the pool's
  /// executor and then dispatched to its associated executor. Waiters are
  /// handed sockets in order; on a multi-threaded io_context, give the pool
  /// a strand (and bind handlers to it) to also run the handlers in that order.
  template <class CompletionToken>
  auto async_get(CompletionToken&& token);

  /// Gets a socket (as async_get) and connects it to `peer`. A connect that
  /// fails with EADDRNOTAVAIL (the port's previous connection is still
  /// closing) is retried with another socket up to connect_retries times;
  /// other connect errors complete the operation (the socket goes back).
  ///
  /// @param token completion token, signature
  ///        `void(std::error_code, portres::pooled_socket<Protocol>)`.
  template <class CompletionToken>
  auto async_connect(const typename Protocol::endpoint& peer, CompletionToken&& token);

  /// The synchronous path: a socket from stock, or an empty pooled_socket
  /// with `ec` == std::errc::operation_would_block when there is none.
  pooled_socket<Protocol> try_get(std::error_code& ec);

  /// Completes every waiter once with condition::aborted (error::pool_closed),
  /// closes the stock and stops refilling. Sockets in use stay usable.
  void close();

  pool_stats stats() const;

private:
  asio::any_io_executor executor_;
  std::shared_ptr<detail::pool_state<Protocol>> state_;
};

} // namespace portres

#include "portres/impl/socket_pool.hpp"

#endif
