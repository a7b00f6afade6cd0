// The Protocol layer of socket_pool: Asio sockets around the compiled core's
// native ones (detail/pool_core.hpp), the connect, and the initiations.
#ifndef PORTRES_IMPL_SOCKET_POOL_HPP
#define PORTRES_IMPL_SOCKET_POOL_HPP

#include "portres/detail/completion.hpp"

#include <asio/error.hpp>
#include <asio/ip/tcp.hpp>

#include <cerrno>
#include <type_traits>
#include <utility>

namespace portres {
namespace detail {

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

template <class Protocol>
constexpr protocol protocol_of() noexcept {
  return std::is_same_v<Protocol, asio::ip::tcp> ? protocol::tcp : protocol::udp;
}

/// The core with the Protocol's sockets.
template <class Protocol>
class pool_state final : public pool_core {
public:
  using socket_type = typename Protocol::socket;
  using socket_options = typename socket_pool<Protocol>::socket_options;

  struct held final : pool_socket {
    explicit held(const asio::any_io_executor& ex) : socket(ex) {}
    native_socket handle() const noexcept override { return socket.native_handle(); }
    bool is_open() const noexcept override { return socket.is_open(); }
    void close() noexcept override {
      std::error_code ignored;
      socket.close(ignored);
    }
    bool connected() const noexcept override {
      std::error_code ec;
      socket.remote_endpoint(ec);
      return !ec;
    }
    std::uint16_t local_port() const noexcept override {
      std::error_code ec;
      const auto local = socket.local_endpoint(ec);
      return ec ? 0 : local.port();
    }
    mutable socket_type socket; // native_handle() is not const in Asio
  };

  pool_state(const asio::any_io_executor& ex, state_ptr keep, reservation_token token,
             std::vector<asio::ip::address> sources, const typename socket_pool<Protocol>::options& opts)
      : pool_core(ex, std::move(keep), token, protocol_of<Protocol>(), std::move(sources),
                  pool_settings{opts.low_water, opts.high_water, opts.max_waiters, opts.rest_interval}),
        configure_(opts.configure) {}

protected:
  std::unique_ptr<pool_socket> wrap(native_socket s, bool ipv6, std::error_code& ec) override {
    auto h = std::make_unique<held>(executor());
    h->socket.assign(ipv6 ? Protocol::v6() : Protocol::v4(), s, ec);
    if (ec) {
      close_native(s);
      return nullptr;
    }
    if (configure_) configure_(h->socket, ec);
    return h;
  }

private:
  socket_options configure_;
};

template <class Protocol>
using pool_completion = completion<std::error_code, pooled_socket<Protocol>>;

template <class Protocol>
class pool_get_op final : public pool_waiter {
public:
  explicit pool_get_op(pool_completion<Protocol> done) : done_(std::move(done)) {}
  void complete(std::error_code ec, pool_lease lease) override {
    done_(ec, pooled_socket<Protocol>(std::move(lease)));
  }
  asio::cancellation_slot slot() const noexcept override { return done_.cancellation_slot(); }

private:
  pool_completion<Protocol> done_;
};

/// A connect: a socket on a port free towards the peer, then its connect;
/// EADDRNOTAVAIL (that 4-tuple still taken) starts over on another port.
template <class Protocol>
class pool_connect_op final : public pool_waiter {
public:
  using endpoint_type = typename Protocol::endpoint;

  static void start(pool_core& core, const endpoint_type& peer, int attempts_left, pool_completion<Protocol> done) {
    core.get_towards(peer.address(), peer.port(),
                     std::make_unique<pool_connect_op>(peer, attempts_left, std::move(done)));
  }

  pool_connect_op(const endpoint_type& peer, int attempts_left, pool_completion<Protocol> done)
      : peer_(peer), attempts_left_(attempts_left), done_(std::move(done)) {}

  void complete(std::error_code ec, pool_lease lease) override {
    if (ec) {
      done_(ec, pooled_socket<Protocol>());
      return;
    }
    auto core = lease.pool;
    pooled_socket<Protocol> s(std::move(lease));
    auto& socket = s.socket(); // stable: the socket lives on the heap
    socket.async_connect(peer_, [core = std::move(core), peer = peer_, attempts = attempts_left_,
                                 done = std::move(done_), s = std::move(s)](std::error_code e) mutable {
      if (address_not_available(e) && attempts > 0) {
        core->connect_retried();
        s = pooled_socket<Protocol>(); // closed; its port rests towards the peer
        start(*core, peer, attempts - 1, std::move(done));
        return;
      }
      if (e) s = pooled_socket<Protocol>();
      done(e, std::move(s));
    });
  }
  asio::cancellation_slot slot() const noexcept override { return done_.cancellation_slot(); }

private:
  endpoint_type peer_;
  int attempts_left_;
  pool_completion<Protocol> done_;
};

template <class Protocol>
struct initiate_pool_get {
  std::shared_ptr<pool_state<Protocol>> state;
  asio::any_io_executor executor;

  template <class Handler>
  void operator()(Handler&& handler) const {
    state->get(std::make_unique<pool_get_op<Protocol>>(pool_completion<Protocol>(std::forward<Handler>(handler), executor)));
  }
};

template <class Protocol>
struct initiate_pool_connect {
  std::shared_ptr<pool_state<Protocol>> state;
  asio::any_io_executor executor;

  template <class Handler>
  void operator()(Handler&& handler, const typename Protocol::endpoint& peer) const {
    pool_connect_op<Protocol>::start(*state, peer, socket_pool<Protocol>::connect_retries,
                                     pool_completion<Protocol>(std::forward<Handler>(handler), executor));
  }
};

} // namespace detail

template <class Protocol>
pooled_socket<Protocol>& pooled_socket<Protocol>::operator=(pooled_socket&& other) noexcept {
  if (this != &other) {
    give_back();
    lease_ = std::move(other.lease_);
  }
  return *this;
}

template <class Protocol>
pooled_socket<Protocol>::~pooled_socket() {
  give_back();
}

template <class Protocol>
typename pooled_socket<Protocol>::socket_type& pooled_socket<Protocol>::socket() noexcept {
  return static_cast<typename detail::pool_state<Protocol>::held&>(*lease_.socket).socket;
}

template <class Protocol>
void pooled_socket<Protocol>::give_back() noexcept {
  if (lease_.pool) lease_.pool->give_back(lease_); // the lease keeps the core alive during the call
  lease_ = detail::pool_lease();
}

template <class Protocol>
typename pooled_socket<Protocol>::socket_type pooled_socket<Protocol>::release() {
  auto& held = socket();
  const detail::native_socket handle = held.native_handle();
  socket_type s = std::move(held);
  if (lease_.pool) lease_.pool->hand_over(lease_, handle);
  lease_ = detail::pool_lease();
  return s;
}

template <class Protocol>
socket_pool<Protocol>::socket_pool(const asio::any_io_executor& ex, const runtime_reservation& reservation,
                                   std::vector<asio::ip::address> sources, options opts)
    : executor_(ex) {
  Expects(static_cast<bool>(reservation));
  std::error_code ec;
  detail::set_port_policy(*reservation.state(), opts.policy, ec);
  state_ = std::make_shared<detail::pool_state<Protocol>>(ex, reservation.state(), reservation.token(),
                                                          std::move(sources), opts);
  state_->start();
}

template <class Protocol>
socket_pool<Protocol>::socket_pool(const asio::any_io_executor& ex, const runtime_reservation& reservation,
                                   const asio::ip::address& local, options opts)
    : socket_pool(ex, reservation, std::vector<asio::ip::address>{local}, std::move(opts)) {}

template <class Protocol>
socket_pool<Protocol>::socket_pool(const asio::any_io_executor& ex, reservation_token persistent,
                                   std::vector<asio::ip::address> sources, options opts)
    : executor_(ex) {
  state_ = std::make_shared<detail::pool_state<Protocol>>(ex, nullptr, persistent, std::move(sources), opts);
  state_->start();
}

template <class Protocol>
socket_pool<Protocol>::socket_pool(const asio::any_io_executor& ex, reservation_token persistent,
                                   const asio::ip::address& local, options opts)
    : socket_pool(ex, persistent, std::vector<asio::ip::address>{local}, std::move(opts)) {}

template <class Protocol>
socket_pool<Protocol>::~socket_pool() {
  close();
}

template <class Protocol>
template <class CompletionToken>
auto socket_pool<Protocol>::async_get(CompletionToken&& token) {
  return asio::async_initiate<CompletionToken, void(std::error_code, pooled_socket<Protocol>)>(
      detail::initiate_pool_get<Protocol>{state_, executor_}, token);
}

template <class Protocol>
template <class CompletionToken>
auto socket_pool<Protocol>::async_connect(const endpoint_type& peer, CompletionToken&& token) {
  return asio::async_initiate<CompletionToken, void(std::error_code, pooled_socket<Protocol>)>(
      detail::initiate_pool_connect<Protocol>{state_, executor_}, token, peer);
}

template <class Protocol>
pooled_socket<Protocol> socket_pool<Protocol>::try_get(std::error_code& ec) {
  return pooled_socket<Protocol>(state_->try_get(ec));
}

template <class Protocol>
void socket_pool<Protocol>::close() {
  state_->close();
}

template <class Protocol>
pool_stats socket_pool<Protocol>::stats() const {
  return state_->stats();
}

template <class Protocol>
destination_headroom socket_pool<Protocol>::headroom(const endpoint_type& peer) const {
  return state_->headroom(peer.address(), peer.port());
}

} // namespace portres

#endif
