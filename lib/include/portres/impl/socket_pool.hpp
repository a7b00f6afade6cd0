#ifndef PORTRES_IMPL_SOCKET_POOL_HPP
#define PORTRES_IMPL_SOCKET_POOL_HPP

#include <asio/error.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include "portres/detail/pool_support.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <type_traits>
#include <vector>

namespace portres {
namespace detail {

/// The shared state of a socket_pool; it outlives the pool while pooled
/// sockets are out. Every member is guarded by `mutex_`; system calls
/// (creating, closing sockets) and handler completion happen outside it,
/// except starting a disconnect for reuse, which must not race close().
template <class Protocol>
class pool_state : public std::enable_shared_from_this<pool_state<Protocol>> {
public:
  using socket_type = typename Protocol::socket;
  using endpoint_type = typename Protocol::endpoint;
  using get_completion = completion<std::error_code, pooled_socket<Protocol>>;
  using options = typename socket_pool<Protocol>::options;
  using clock = std::chrono::steady_clock;

  pool_state(const asio::any_io_executor& ex, state_ptr keep, reservation_token token,
             const asio::ip::address& local, options opts)
      : executor_(ex), keep_(std::move(keep)), token_(token), local_(pool_local_address(keep_.get(), local)),
        options_(std::move(opts)),
        retry_(ex) {
    if (options_.high_water < options_.low_water) options_.high_water = options_.low_water;
    if constexpr (std::is_same_v<Protocol, asio::ip::tcp>) reuse_ = socket_reuse_available();
  }

  const asio::any_io_executor& executor() const noexcept { return executor_; }

  void warm_up() {
    std::lock_guard lock(mutex_);
    schedule_refill_locked();
  }

  void get(get_completion done) {
    std::unique_lock lock(mutex_);
    if (closed_) {
      lock.unlock();
      done(error::pool_closed, pooled_socket<Protocol>());
      return;
    }
    if (!ready_.empty()) {
      auto s = take_ready_locked();
      lock.unlock();
      done(std::error_code(), std::move(s));
      return;
    }
    if (waiters_.size() >= options_.max_waiters) {
      lock.unlock();
      done(error::too_many_waiters, pooled_socket<Protocol>());
      return;
    }
    ++counters_.misses;
    const auto id = ++next_waiter_id_;
    if (auto slot = done.cancellation_slot(); slot.is_connected()) {
      // Posted, so the waiter is never completed (and the slot cleared)
      // from inside the cancellation signal's own call.
      slot.assign([weak = this->weak_from_this(), ex = executor_, id](asio::cancellation_type) {
        asio::post(ex, [weak, id] {
          if (auto self = weak.lock()) self->cancel_waiter(id);
        });
      });
    }
    waiters_.push_back({id, std::move(done)});
    schedule_refill_locked();
  }

  pooled_socket<Protocol> try_get(std::error_code& ec) {
    std::lock_guard lock(mutex_);
    if (closed_) {
      ec = error::pool_closed;
      return {};
    }
    if (ready_.empty()) {
      ec = std::make_error_code(std::errc::operation_would_block);
      return {};
    }
    ec.clear();
    return take_ready_locked();
  }

  // Gets a socket and connects it; a connect that fails with
  // EADDRNOTAVAIL (the port's last connection still closing) is retried
  // with another socket, at most `attempts_left` more times.
  void connect(const endpoint_type& peer, int attempts_left, get_completion done) {
    auto self = this->shared_from_this();
    {
      // With stock, the connect starts at once: no hop through the executor
      // before it (its completion is delivered as usual).
      std::unique_lock lock(mutex_);
      if (!closed_ && !ready_.empty()) {
        auto s = take_ready_locked();
        lock.unlock();
        connect_socket(std::move(s), peer, attempts_left, std::move(done));
        return;
      }
    }
    get(get_completion(
        [self, peer, attempts_left, done = std::move(done)](std::error_code ec, pooled_socket<Protocol> s) mutable {
          if (ec) {
            done(ec, pooled_socket<Protocol>());
            return;
          }
          self->connect_socket(std::move(s), peer, attempts_left, std::move(done));
        },
        executor_));
  }

  void connect_socket(pooled_socket<Protocol> s, const endpoint_type& peer, int attempts_left, get_completion done) {
    auto& socket = s.socket(); // stable: the socket lives on the heap
    socket.async_connect(reachable_peer(local_, peer), [self = this->shared_from_this(), peer, attempts_left, done = std::move(done),
                                s = std::move(s)](std::error_code ec) mutable {
      if (address_not_available(ec) && attempts_left > 0) {
        s = pooled_socket<Protocol>(); // closed; its port rests
        self->connect(peer, attempts_left - 1, std::move(done));
        return;
      }
      if (ec) s = pooled_socket<Protocol>();
      done(ec, std::move(s));
    });
  }

  void close() {
    std::deque<waiter> waiting;
    std::deque<ready_socket> stock;
    {
      std::lock_guard lock(mutex_);
      if (closed_) return;
      closed_ = true;
      waiting.swap(waiters_);
      stock.swap(ready_);
      retry_.cancel();
      if (pending_) {
        std::error_code ignored;
        pending_->close(ignored); // aborts its associate
        pending_.reset();
      }
      for (auto* s : recycling_) {
        std::error_code ignored;
        s->close(ignored); // aborts its pending disconnect (started under this lock)
      }
    }
    gate_->wait_idle(); // a bind on the blocking pool is short; it hands back before it ends
    for (auto& w : waiting) w.done(error::pool_closed, pooled_socket<Protocol>());
    for (auto& s : stock) {
      std::error_code ignored;
      s.socket->close(ignored);
      return_port(s.port, clock::duration::zero()); // never connected: free at once
    }
  }

  pool_stats stats() const {
    std::lock_guard lock(mutex_);
    auto s = counters_;
    s.ready = ready_.size();
    s.in_use = in_use_;
    s.waiters = waiters_.size();
    return s;
  }

  // A returned TCP socket that was connected: where the OS can reuse it
  // (Windows DisconnectEx with TF_REUSE_SOCKET) it is disconnected and goes
  // back to stock with its port, still counted in use until then. False:
  // the caller closes it as usual.
  bool recycle(std::unique_ptr<socket_type>& socket, std::uint16_t port) {
    if (!reuse_ || !socket || !socket->is_open()) return false;
    std::error_code ec;
    socket->remote_endpoint(ec);
    if (ec) return false; // never connected, or reset: nothing to reuse
    std::lock_guard lock(mutex_);
    if (closed_) return false;
    recycling_.push_back(socket.get());
    // Started under the lock: close() on another thread either runs first
    // (then we returned false above) or sees the socket in recycling_ and
    // closes it only once the disconnect is under way.
    const auto handle = native_socket(socket->native_handle());
    async_disconnect_for_reuse(executor_, handle,
                               status_completion(
                                   [self = this->shared_from_this(), s = std::move(socket), port](std::error_code e) mutable {
                                     self->on_recycled(std::move(s), port, e);
                                   },
                                   executor_));
    return true;
  }

  // A pooled socket was closed (its port goes back to the block, resting
  // for TCP: its last connection may still be closing), or released to its
  // user (`port` 0: the port goes with the socket).
  void on_returned(std::uint16_t port) {
    return_port(port, options_.rest_interval);
    std::lock_guard lock(mutex_);
    --in_use_;
    if (!waiters_.empty() || ready_.size() < options_.low_water) schedule_refill_locked();
  }

private:
  void return_port(std::uint16_t port, clock::duration rest) {
    if (port == 0) return;
    if constexpr (!std::is_same_v<Protocol, asio::ip::tcp>) rest = clock::duration::zero();
    pool_port_returned(keep_.get(), token_, port, clock::now() + rest);
  }

  struct ready_socket {
    std::unique_ptr<socket_type> socket;
    std::uint16_t port;
  };
  struct waiter {
    std::uint64_t id;
    get_completion done;
  };
  // Sockets created per handler run before the refill re-posts itself, so
  // no completion waits behind a whole batch.
  static constexpr int sockets_per_run = 1;

  pooled_socket<Protocol> take_ready_locked() {
    auto entry = std::move(ready_.front());
    ready_.pop_front();
    ++counters_.hits;
    ++in_use_;
    if (ready_.size() < options_.low_water) schedule_refill_locked();
    return pooled_socket<Protocol>(this->shared_from_this(), std::move(entry.socket), entry.port);
  }

  void on_recycled(std::unique_ptr<socket_type> socket, std::uint16_t port, std::error_code ec) {
    std::unique_lock lock(mutex_);
    std::erase(recycling_, socket.get());
    std::error_code local_ec;
    // The reused socket must still hold its port of the block.
    if (!ec && !closed_ && socket->local_endpoint(local_ec).port() != port) {
      ec = local_ec ? local_ec : std::error_code(error::not_associated);
    }
    --in_use_;
    if (ec || closed_) {
      if (ec && !closed_) ++counters_.recycle_failures;
      if (!closed_ && (!waiters_.empty() || ready_.size() < options_.low_water)) schedule_refill_locked();
      lock.unlock();
      socket->close(local_ec);
      return_port(port, options_.rest_interval);
      return;
    }
    ++counters_.recycled;
    stock_or_serve(lock, std::move(socket), port);
  }

  // A ready socket goes to the first waiter (completed once `lock` is
  // released), or to stock when nobody waits.
  void stock_or_serve(std::unique_lock<std::mutex>& lock, std::unique_ptr<socket_type> socket, std::uint16_t port) {
    if (waiters_.empty()) {
      ready_.push_back({std::move(socket), port});
      return;
    }
    auto w = std::move(waiters_.front());
    waiters_.pop_front();
    ++in_use_;
    auto handed = pooled_socket<Protocol>(this->shared_from_this(), std::move(socket), port);
    lock.unlock();
    w.done(std::error_code(), std::move(handed));
  }

  void schedule_refill_locked() {
    if (refill_scheduled_ || closed_) return;
    refill_scheduled_ = true;
    asio::post(executor_, [self = this->shared_from_this()] { self->refill(); });
  }

  void cancel_waiter(std::uint64_t id) {
    std::unique_lock lock(mutex_);
    for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
      if (it->id != id) continue;
      auto done = std::move(it->done);
      waiters_.erase(it);
      lock.unlock();
      done(std::error_code(asio::error::operation_aborted), pooled_socket<Protocol>());
      return;
    }
  }

  bool wanted_locked() const { return !closed_ && (ready_.size() < options_.high_water || !waiters_.empty()); }

  // One handler run of the refill: a few sockets, then it re-posts itself
  // while stock is below the high water mark or anyone waits. Creation that
  // must wait (Windows' overlapped associate, a registry read) continues
  // from its completion; refill_scheduled_ stays set meanwhile.
  void refill() {
    for (int made = 0;; ++made) {
      {
        std::lock_guard lock(mutex_);
        if (!wanted_locked()) {
          refill_scheduled_ = false;
          return;
        }
      }
      // Bounded work per handler run; asked only once more is wanted, so a
      // pool topped up by this run costs no extra run (and reactor poll).
      if (made == sockets_per_run) break;
      std::error_code ec;
      std::uint16_t port = 0;
      auto socket = open_configured(ec);
      if (!ec && !associate_first_) {
        port = pool_bind(keep_.get(), socket->native_handle(), proto(), token_, local_, false, ec);
        if (ec == std::errc::function_not_supported) {
          associate_first_ = true;
          ec.clear();
        }
        if (ec == std::errc::operation_would_block) return bind_on_blocking_pool(std::move(socket));
      }
      if (!ec && associate_first_) return associate_then_bind(std::move(socket));
      if (!created(std::move(socket), port, ec)) return;
    }
    asio::post(executor_, [self = this->shared_from_this()] { self->refill(); });
  }

  std::unique_ptr<socket_type> open_configured(std::error_code& ec) {
    auto socket = std::make_unique<socket_type>(executor_);
    // Opened by the library, not by Asio, so child processes do not inherit
    // the socket (and with it the block's port); then handed to Asio.
    const auto handle = open_uninheritable(local_.is_v6(), proto(), ec);
    if (ec) return socket;
    socket->assign(local_.is_v6() ? Protocol::v6() : Protocol::v4(), handle, ec);
    if (ec) {
      close_native(handle);
      return socket;
    }
    if (options_.configure) options_.configure(*socket, ec);
    return socket;
  }

  static constexpr protocol proto() noexcept {
    return std::is_same_v<Protocol, asio::ip::tcp> ? protocol::tcp : protocol::udp;
  }

  // Backends without a fast path (Windows native): the overlapped associate
  // on the completion port (never the blocking IOCTL on an io thread), then
  // bind (port 0: the OS picks from the reservation). The socket waits in
  // pending_ (closed by close(), which aborts the IOCTL), not in the handler.
  void associate_then_bind(std::unique_ptr<socket_type> socket) {
    const auto handle = socket->native_handle();
    {
      std::lock_guard lock(mutex_);
      if (closed_) {
        refill_scheduled_ = false;
        return; // the socket closes as it goes out of scope
      }
      pending_ = std::move(socket);
    }
    detail::async_associate(executor_, handle, token_,
                            status_completion(
                                [self = this->shared_from_this()](std::error_code ec) mutable {
                                  std::unique_ptr<socket_type> s;
                                  {
                                    std::lock_guard lock(self->mutex_);
                                    s = std::move(self->pending_);
                                  }
                                  std::uint16_t port = 0;
                                  if (!s) ec = error::pool_closed;
                                  if (!ec) port = portres::bind(*s, self->local_, ec);
                                  if (self->created(std::move(s), port, ec)) self->refill();
                                },
                                executor_));
  }

  // The block must be looked up in the registry's files: on the blocking
  // pool, never on an io thread.
  // The blocking thread hands the state and the socket (I/O objects) back to
  // the executor before it lets go, so they are never destroyed off the I/O
  // side, and close() waits for it: a pool destroyed, then its io_context,
  // never leaves a bind running on the blocking pool.
  void bind_on_blocking_pool(std::unique_ptr<socket_type> socket) {
    auto held = std::make_shared<std::unique_ptr<socket_type>>(std::move(socket));
    gate_->enter();
    const bool started = run_blocking(executor_, [self = this->shared_from_this(), held, gate = gate_]() mutable {
      std::error_code ec;
      const auto handle = (*held)->native_handle();
      const auto port = pool_bind(self->keep_.get(), handle, proto(), self->token_, self->local_, true, ec);
      const auto ex = self->executor_;
      asio::post(ex, [self = std::move(self), held = std::move(held), port, ec] {
        if (self->created(std::move(*held), port, ec)) self->refill();
      });
      gate->leave();
    });
    if (!started) gate_->leave(); // its io_context is being destroyed: no bind
  }

  static bool transient(const std::error_code& ec) {
    return ec == condition::exhausted || ec == condition::in_use;
  }

  // The end of one socket's creation. False: the refill stops here (an
  // error, or the pool closed); refill_scheduled_ is cleared.
  bool created(std::unique_ptr<socket_type> socket, std::uint16_t port, std::error_code ec) {
    std::unique_lock lock(mutex_);
    if (ec || closed_) {
      refill_scheduled_ = false;
      std::deque<waiter> failed;
      if (ec && transient(ec)) {
        // The block is full for now: ports come back as sockets close.
        ++counters_.exhausted_events;
        if (!waiters_.empty() && !closed_) schedule_retry_locked();
      } else if (ec) {
        // Permanent (released reservation, not supported, access denied):
        // every waiter hears it now rather than waiting forever.
        ++counters_.creation_failures;
        failed.swap(waiters_);
      }
      lock.unlock();
      if (socket) {
        std::error_code ignored;
        socket->close(ignored);
        if (!ec) return_port(port, clock::duration::zero());
      }
      for (auto& w : failed) w.done(ec, pooled_socket<Protocol>());
      return false;
    }
    retry_delay_ = first_retry_delay;
    ++counters_.refills;
    stock_or_serve(lock, std::move(socket), port);
    return true;
  }

  static constexpr std::chrono::milliseconds first_retry_delay{5};
  static constexpr std::chrono::milliseconds last_retry_delay{1000};

  void schedule_retry_locked() {
    retry_.expires_after(retry_delay_);
    retry_delay_ = std::min(retry_delay_ * 2, last_retry_delay);
    retry_.async_wait([weak = this->weak_from_this()](std::error_code ec) {
      if (ec) return;
      if (auto self = weak.lock()) {
        std::lock_guard lock(self->mutex_);
        self->schedule_refill_locked();
      }
    });
  }

  mutable std::mutex mutex_;
  asio::any_io_executor executor_;
  state_ptr keep_; // keeps a runtime block alive while the pool or its sockets live
  reservation_token token_;
  asio::ip::address local_;
  options options_;
  std::deque<ready_socket> ready_;
  std::deque<waiter> waiters_;
  std::size_t in_use_ = 0;
  std::uint64_t next_waiter_id_ = 0;
  bool refill_scheduled_ = false;
  bool closed_ = false;
  bool reuse_ = false;            // TCP sockets are disconnected for reuse rather than closed
  bool associate_first_ = false;  // the backend has no fast path (only touched by the refill chain)
  std::chrono::milliseconds retry_delay_ = first_retry_delay;
  std::vector<socket_type*> recycling_; // sockets whose disconnect is pending
  std::unique_ptr<socket_type> pending_; // a socket whose overlapped associate is under way
  pool_stats counters_;
  asio::steady_timer retry_;
  std::shared_ptr<pool_blocking_gate> gate_ = std::make_shared<pool_blocking_gate>();
};

} // namespace detail

template <class Protocol>
pooled_socket<Protocol>& pooled_socket<Protocol>::operator=(pooled_socket&& other) noexcept {
  if (this != &other) {
    give_back();
    pool_ = std::move(other.pool_);
    socket_ = std::move(other.socket_);
    port_ = other.port_;
  }
  return *this;
}

template <class Protocol>
pooled_socket<Protocol>::~pooled_socket() {
  give_back();
}

template <class Protocol>
void pooled_socket<Protocol>::give_back() noexcept {
  if (!socket_) return;
  if (pool_ && pool_->recycle(socket_, port_)) {
    pool_.reset();
    return;
  }
  // Where sockets cannot be reused, closing frees the port for the block
  // (TIME_WAIT permitting) and the pool creates a fresh one.
  std::error_code ignored;
  socket_->close(ignored);
  socket_.reset();
  if (pool_) pool_->on_returned(port_);
  pool_.reset();
}

template <class Protocol>
typename Protocol::endpoint pooled_socket<Protocol>::peer_endpoint(const typename Protocol::endpoint& peer) const {
  std::error_code ec;
  const auto local = socket_ ? socket_->local_endpoint(ec) : typename Protocol::endpoint();
  return socket_ && !ec ? detail::reachable_peer(local.address(), peer) : peer;
}

template <class Protocol>
typename pooled_socket<Protocol>::socket_type pooled_socket<Protocol>::release() {
  socket_type s = std::move(*socket_);
  socket_.reset();
  if (pool_) pool_->on_returned(0);
  pool_.reset();
  return s;
}

template <class Protocol>
socket_pool<Protocol>::socket_pool(const asio::any_io_executor& ex, const runtime_reservation& reservation,
                                   const asio::ip::address& local, options opts)
    : executor_(ex) {
  Expects(static_cast<bool>(reservation));
  std::error_code ec;
  detail::set_port_policy(*reservation.state(), opts.policy, ec);
  state_ = std::make_shared<detail::pool_state<Protocol>>(ex, reservation.state(), reservation.token(), local,
                                                          std::move(opts));
  state_->warm_up();
}

template <class Protocol>
socket_pool<Protocol>::socket_pool(const asio::any_io_executor& ex, reservation_token persistent,
                                   const asio::ip::address& local, options opts)
    : executor_(ex) {
  state_ = std::make_shared<detail::pool_state<Protocol>>(ex, nullptr, persistent, local, std::move(opts));
  state_->warm_up();
}

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
auto socket_pool<Protocol>::async_connect(const typename Protocol::endpoint& peer, CompletionToken&& token) {
  return asio::async_initiate<CompletionToken, void(std::error_code, pooled_socket<Protocol>)>(
      detail::initiate_pool_connect<Protocol>{state_, executor_}, token, peer);
}

template <class Protocol>
pooled_socket<Protocol> socket_pool<Protocol>::try_get(std::error_code& ec) {
  return state_->try_get(ec);
}

template <class Protocol>
void socket_pool<Protocol>::close() {
  state_->close();
}

template <class Protocol>
pool_stats socket_pool<Protocol>::stats() const {
  return state_->stats();
}

} // namespace portres

#endif
