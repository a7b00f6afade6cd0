// Pieces of the socket pool that stand apart from its state: the connect
// error it retries, the gate that counts binds under way on the blocking
// pool, and the initiation objects its async operations hand to
// async_initiate.
#ifndef PORTRES_DETAIL_POOL_SUPPORT_HPP
#define PORTRES_DETAIL_POOL_SUPPORT_HPP

#include "portres/detail/completion.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/error.hpp>
#include <asio/ip/address.hpp>

#include <cerrno>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <system_error>
#include <utility>

namespace portres {
template <class Protocol>
class socket_pool;
template <class Protocol>
class pooled_socket;

namespace detail {
template <class Protocol>
class pool_state;

// EADDRNOTAVAIL as Asio reports it from a connect (it has no enumerator for it).
// Only Linux reports a busy 4-tuple this way; on Windows WSAEADDRNOTAVAIL
// means a bad remote address, which another port would not fix.
inline bool address_not_available([[maybe_unused]] const std::error_code& ec) noexcept {
#if defined(_WIN32)
  return false;
#else
  return ec == std::error_code(EADDRNOTAVAIL, asio::error::get_system_category());
#endif
}

/// `peer` as a socket bound to `local` reaches it: an IPv4 peer in its
/// v4-mapped form for an IPv6 (dual-mode) socket, e.g. Windows' pool sockets.
template <class Endpoint>
Endpoint reachable_peer(const asio::ip::address& local, const Endpoint& peer) {
  if (!local.is_v6() || !peer.address().is_v4()) return peer;
  return Endpoint(asio::ip::make_address_v6(asio::ip::v4_mapped, peer.address().to_v4()), peer.port());
}

/// Counts binds under way on the blocking pool, so a closing pool can wait
/// for them.
struct pool_blocking_gate {
  std::mutex mutex;
  std::condition_variable idle;
  int in_flight = 0;
  void enter() {
    std::lock_guard lock(mutex);
    ++in_flight;
  }
  void leave() {
    std::lock_guard lock(mutex);
    if (--in_flight == 0) idle.notify_all();
  }
  void wait_idle() {
    std::unique_lock lock(mutex);
    idle.wait(lock, [&] { return in_flight == 0; });
  }
};

template <class Protocol>
struct initiate_pool_get {
  std::shared_ptr<pool_state<Protocol>> state;
  asio::any_io_executor executor;

  template <class Handler>
  void operator()(Handler&& handler) const {
    state->get(completion<std::error_code, pooled_socket<Protocol>>(std::forward<Handler>(handler), executor));
  }
};

template <class Protocol>
struct initiate_pool_connect {
  std::shared_ptr<pool_state<Protocol>> state;
  asio::any_io_executor executor;

  template <class Handler>
  void operator()(Handler&& handler, const typename Protocol::endpoint& peer) const {
    state->connect(peer, socket_pool<Protocol>::connect_retries,
                   completion<std::error_code, pooled_socket<Protocol>>(std::forward<Handler>(handler), executor));
  }
};

} // namespace detail
} // namespace portres

#endif
