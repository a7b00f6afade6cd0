// A pool of ready sockets: opened, associated with a reservation and bound to
// one of its ports, handed out without a system call on the hot path.
#ifndef PORTRES_SOCKET_POOL_HPP
#define PORTRES_SOCKET_POOL_HPP

#include "portres/association.hpp"
#include "portres/detail/pool_core.hpp"
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
#include <vector>

namespace portres {

namespace detail {
template <class Protocol>
class pool_state;
template <class Protocol>
class pool_get_op;
template <class Protocol>
class pool_connect_op;
} // namespace detail

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

  explicit operator bool() const noexcept { return lease_.socket != nullptr; }
  /// Ready for async_connect (TCP) or send_to/receive_from (UDP); connected
  /// when it came from socket_pool::async_connect.
  socket_type& socket() noexcept;
  socket_type* operator->() noexcept { return &socket(); }
  /// The local port, from the pool's block.
  std::uint16_t port() const noexcept { return lease_.port; }
  /// The local address it is bound to (one of the pool's source addresses).
  const asio::ip::address& source() const noexcept { return lease_.source; }
  /// `peer` in the form this socket reaches it: an IPv4 peer as its
  /// v4-mapped IPv6 address when the socket is IPv6. On Windows (native
  /// engine) pool sockets are dual-mode IPv6, bound to the v4-mapped form of
  /// an IPv4 source: connect (or send) them to peer_endpoint(p), not p.
  /// socket_pool::async_connect does this itself.
  typename Protocol::endpoint peer_endpoint(const typename Protocol::endpoint& peer) const;
  /// Takes the socket out of the pool's accounting; the caller owns it now.
  /// Its port comes back to the block once the socket is closed.
  socket_type release();

private:
  friend class detail::pool_get_op<Protocol>;
  friend class detail::pool_connect_op<Protocol>;
  friend class socket_pool<Protocol>;
  explicit pooled_socket(detail::pool_lease lease) noexcept : lease_(std::move(lease)) {}
  void give_back() noexcept;

  detail::pool_lease lease_;
};

/// Pre-associated, pre-bound sockets on demand, for asio::ip::tcp or
/// asio::ip::udp, from one or several source addresses. Safe to use from
/// several threads running the executor's context.
///
/// TCP ports are shared per destination where capabilities().port_sharing
/// says so: async_connect takes a port that no live connection of the block
/// uses towards that peer from that source, so a block of N ports holds up
/// to N x sources connections per destination. async_get keeps a port
/// nobody else uses (for any use: connect anywhere, listen). Both mix on one
/// pool. UDP ports are always one socket each.
template <class Protocol>
class socket_pool {
public:
  using socket_type = typename Protocol::socket;
  using endpoint_type = typename Protocol::endpoint;
  using socket_options = std::function<void(socket_type&, std::error_code&)>;

  struct options {
    std::size_t low_water = 8;    ///< refill in the background below this many ready sockets
    std::size_t high_water = 32;  ///< warm-up and refills fill up to this many
    port_policy policy = port_policy::sequential;
    std::size_t max_waiters = 1024; ///< more waiters than this: condition::exhausted at once
    socket_options configure;     ///< applied to each new socket before it is bound (e.g. SO_LINGER)
    /// TCP: a port whose socket came back closed rests this long (its last
    /// connection may still be in FIN_WAIT) before reuse while other ports
    /// are free (with port sharing: towards the peer it was connected to).
    std::chrono::milliseconds rest_interval{1000};
  };

  /// How many times async_connect retries on another port.
  static constexpr int connect_retries = 3;

  /// Draws from a runtime reservation the pool shares (it stays alive while
  /// the pool or any of its sockets lives). The pool sets the block's policy.
  socket_pool(const asio::any_io_executor& ex, const runtime_reservation& reservation,
              const asio::ip::address& local, options opts);
  socket_pool(const asio::any_io_executor& ex, const runtime_reservation& reservation,
              const asio::ip::address& local)
      : socket_pool(ex, reservation, local, options{}) {}
  /// Several source addresses (e.g. 127.0.0.1-127.0.0.4): connections go
  /// from the least used first, ready sockets in turn. Throws
  /// std::system_error (invalid_argument) when `sources` is empty.
  socket_pool(const asio::any_io_executor& ex, const runtime_reservation& reservation,
              std::vector<asio::ip::address> sources, options opts);
  /// Draws from a persistent reservation's token (needs the same rights as associating it).
  socket_pool(const asio::any_io_executor& ex, reservation_token persistent, const asio::ip::address& local,
              options opts);
  socket_pool(const asio::any_io_executor& ex, reservation_token persistent, std::vector<asio::ip::address> sources,
              options opts);
  socket_pool(const socket_pool&) = delete;
  socket_pool& operator=(const socket_pool&) = delete;
  /// Closes the pool (see close()).
  ~socket_pool();

  const asio::any_io_executor& get_executor() const noexcept { return executor_; }

  /// Gets a ready socket on a port nobody else uses.
  ///
  /// @param token completion token, signature
  ///        `void(std::error_code, portres::pooled_socket<Protocol>)`.
  /// With stock the handler is posted at once (no socket is created, no
  /// system call). Without, the call waits first-come first-served for a
  /// returned or newly created socket, as long as a socket of this pool is
  /// out (its port comes back); otherwise it fails at once with
  /// condition::exhausted naming the block. Errors: condition::exhausted
  /// (error::too_many_waiters) when max_waiters are already waiting;
  /// condition::aborted after close() (error::pool_closed), once the
  /// reservation was released (error::reservation_released) or lost
  /// (linux_error::reservation_lost), and on per-operation cancellation (any
  /// type) while waiting.
  /// Like Asio's own operations, the handler is posted to the pool's
  /// executor and then dispatched to its associated executor. Waiters are
  /// handed sockets in order; on a multi-threaded io_context, give the pool
  /// a strand (and bind handlers to it) to also run the handlers in that order.
  template <class CompletionToken>
  auto async_get(CompletionToken&& token);

  /// Gets a socket on a port free towards `peer` (a ready socket first,
  /// else one bound for it, from the least used source of its family) and
  /// connects it. Waits while the pool has a connection towards `peer` or a
  /// socket from async_get out (one of them frees a port for it);
  /// otherwise fails at once with condition::exhausted naming the block and
  /// the peer. A connect that fails with EADDRNOTAVAIL (that 4-tuple is
  /// still taken, e.g. closing) is retried on another port up to
  /// connect_retries times; other connect errors complete the operation (the
  /// socket goes back). No source of the peer's family:
  /// std::errc::address_family_not_supported. Other errors as async_get.
  ///
  /// @param token completion token, signature
  ///        `void(std::error_code, portres::pooled_socket<Protocol>)`.
  template <class CompletionToken>
  auto async_connect(const endpoint_type& peer, CompletionToken&& token);

  /// The synchronous path: a socket from stock, or an empty pooled_socket
  /// with `ec` == std::errc::operation_would_block when there is none.
  pooled_socket<Protocol> try_get(std::error_code& ec);

  /// Completes every waiter once with condition::aborted (error::pool_closed),
  /// closes the stock and stops refilling. Sockets in use stay usable.
  void close();

  pool_stats stats() const;
  /// Ports of the block still free towards `peer` from the pool's sources
  /// of its family (summed), and the pool's live connections towards it.
  destination_headroom headroom(const endpoint_type& peer) const;

private:
  asio::any_io_executor executor_;
  std::shared_ptr<detail::pool_state<Protocol>> state_;
};

} // namespace portres

#include "portres/impl/socket_pool.hpp"

#endif
