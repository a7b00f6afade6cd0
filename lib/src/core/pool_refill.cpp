// The pool core: creating sockets (the refill), serving waiters with them,
// and reusing disconnected ones (Windows).
#include "core/pool_internal.hpp"

#include "core/destination_ports.hpp"

#include <asio/post.hpp>
#if defined(__linux__)
#include "portres/linux_error.hpp"
#endif

#include <algorithm>

namespace portres::detail {

namespace {
// Sockets created per handler run before the refill re-posts itself, so no
// completion waits behind a whole batch.
constexpr int sockets_per_run = 1;

bool transient(const std::error_code& ec) { return ec == condition::exhausted || ec == condition::in_use; }

// Errors after which the pool has nothing left to give.
bool reservation_gone(const std::error_code& ec) {
#if defined(__linux__)
  if (ec == linux_error::reservation_lost) return true; // its broker went away
#endif
  return ec == error::already_released || ec == error::reservation_released;
}
} // namespace

void pool_core::schedule_refill_locked() {
  if (refill_scheduled_ || closed_) return;
  refill_scheduled_ = true;
  asio::post(executor_, [self = shared_from_this()] { self->refill(); });
}

void pool_core::schedule_retry_locked() {
  retry_.expires_after(retry_delay_);
  retry_delay_ = std::min(retry_delay_ * 2, last_retry_delay);
  retry_.async_wait([weak = weak_from_this()](std::error_code ec) {
    if (ec) return;
    const auto self = weak.lock();
    if (!self) return;
    // Also notices a reservation lost meanwhile (its broker went away).
    if (const auto gone = self->reservation_status()) return self->shut(gone);
    std::lock_guard lock(self->mutex_);
    self->blocked_.clear();
    self->exclusive_blocked_ = false;
    self->schedule_refill_locked();
  });
}

std::optional<pool_core::job> pool_core::next_job_locked() const {
  // Connects first: each waits for a port free towards its own peer, so one
  // peer without room holds up nobody else.
  for (const auto& w : connecting_) {
    if (!blocked_.contains(*w.towards)) return job{w.towards};
  }
  if (exclusive_blocked_) return std::nullopt;
  if (!waiters_.empty() || ready_.size() < settings_.high_water) return job{};
  return std::nullopt;
}

// One handler run of the refill: a socket, then it re-posts itself while
// anything is wanted. Creation that must wait (Windows' overlapped associate,
// a registry read) continues from its completion; refill_scheduled_ stays set
// meanwhile.
void pool_core::refill() {
  for (int made = 0;; ++made) {
    job j;
    {
      std::lock_guard lock(mutex_);
      auto next = closed_ ? std::nullopt : next_job_locked();
      if (!next) {
        refill_scheduled_ = false;
        return;
      }
      // A job, not an optional one, leaves the lock: GCC's
      // -Wmaybe-uninitialized cannot follow an optional<optional<>> across it.
      j = std::move(*next);
      // No port of the block known free: a socket of this pool coming back
      // frees one (then this runs again), so no bind is tried (near full it
      // would ask the kernel which ports are held, at every return). Only
      // with nothing of the pool out does a get try, to learn whether ports
      // held outside could come back (else it fails at once). Stock alone
      // (nobody waits) is never worth the try.
      if (!j.towards && (waiters_.empty() || in_use_ > 0) && owner_of(keep_.get()).free_ports(token_) == 0) {
        exclusive_blocked_ = true;
        ++counters_.exhausted_events;
        if (!waiters_.empty()) schedule_retry_locked(); // still notices a reservation lost meanwhile
        continue;
      }
    }
    // Bounded work per handler run; asked only once more is wanted, so a
    // pool topped up by this run costs no extra run (and reactor poll).
    if (made == sockets_per_run) break;
    auto c = create(j, false);
    if (c.ec == std::errc::operation_would_block) return bind_on_blocking_pool(j, std::move(c));
    if (!c.ec && associate_first_ && c.port == 0) return associate_then_bind(std::move(c));
    if (finish(j, std::move(c), true) == outcome::stopped) return;
  }
  asio::post(executor_, [self = shared_from_this()] { self->refill(); });
}

pool_core::creation pool_core::create(const job& j, bool may_block) {
  creation c;
  bool ipv6 = false;
  if (j.towards) {
    ipv6 = j.towards->peer.is_v6();
    if (sources_for(j.towards->peer).empty()) {
      c.ec = std::make_error_code(std::errc::address_family_not_supported); // no source of the peer's family
      return c;
    }
  } else {
    std::lock_guard lock(mutex_);
    c.source = sources_[next_source_++ % sources_.size()]; // stock spreads over the sources in turn
    ipv6 = owner_of(keep_.get()).pool_address(c.source).is_v6(); // Windows: dual-mode IPv6 for IPv4 too
  }
  // Opened by the library, not by Asio, so child processes do not inherit
  // the socket (and with it the block's port); then handed to Asio.
  const auto handle = open_uninheritable(ipv6, protocol_, c.ec);
  if (c.ec) return c;
  c.socket = wrap(handle, ipv6, c.ec);
  if (c.ec) {
    c.socket.reset();
    return c;
  }
  if (!associate_first_) bind(j, c, may_block);
  return c;
}

void pool_core::bind(const job& j, creation& c, bool may_block) {
  auto& owner = owner_of(keep_.get());
  const auto b = may_block ? blocking::allowed : blocking::forbidden;
  c.ec.clear();
  if (j.towards) {
    c.port = owner.bind_fresh_towards(c.socket->handle(), token_, sources_for(j.towards->peer), j.towards->peer,
                                      j.towards->peer_port, b, c.source, c.ec);
    return;
  }
  c.port = owner.bind_fresh(c.socket->handle(), protocol_, token_, owner.pool_address(c.source), b, c.ec);
  if (c.ec == std::errc::function_not_supported) {
    associate_first_ = true; // the Windows engine: the overlapped associate, then bind
    c.ec.clear();
  }
}

void pool_core::fail_locked(std::deque<waiter_entry>& queue, const std::optional<destination>& towards,
                            std::error_code ec, std::vector<failed_waiter>& out) {
  for (auto it = queue.begin(); it != queue.end();) {
    if (towards && it->towards != towards) {
      ++it;
      continue;
    }
    if (&queue == &connecting_ && --queued_[*it->towards] == 0) queued_.erase(*it->towards);
    // A connect waiting on exclusive ports still hears which peer it was for.
    out.push_back({std::move(it->waiter), it->towards ? towards_peer(ec, it->towards->peer, it->towards->peer_port) : ec});
    it = queue.erase(it);
  }
}

// The end of one socket's creation. `chain`: called by the refill chain,
// whose refill_scheduled_ it clears when it stops.
pool_core::outcome pool_core::finish(const job& j, creation c, bool chain) {
  std::unique_lock lock(mutex_);
  if (!c.ec && !closed_) {
    ++counters_.refills;
    retry_delay_ = first_retry_delay;
    stock_entry entry{std::move(c.socket), c.port, c.source};
    if (!j.towards) {
      serve_or_stock(lock, std::move(entry));
      return outcome::served;
    }
    // Bound towards the peer: the first connect waiting for it gets it.
    const auto it = std::find_if(connecting_.begin(), connecting_.end(),
                                 [&](const auto& e) { return e.towards == j.towards; });
    if (it != connecting_.end()) {
      auto w = std::move(it->waiter);
      if (--queued_[*j.towards] == 0) queued_.erase(*j.towards);
      connecting_.erase(it);
      auto lease = lease_locked(std::move(entry), j.towards, true);
      lock.unlock();
      w->complete({}, std::move(lease));
      return outcome::served;
    }
    // Its waiter was cancelled meanwhile: the port goes back.
    lock.unlock();
    entry.socket->close();
    const destination used{entry.source, j.towards->peer, j.towards->peer_port};
    owner_of(keep_.get()).port_returned(token_, entry.port, &used, clock::now());
    return outcome::served;
  }
  std::vector<failed_waiter> failed;
  auto result = outcome::stopped;
  bool gone = false;
  if (closed_) {
    if (chain) refill_scheduled_ = false;
  } else if (transient(c.ec)) {
    // No port free (towards the peer) for now: they come back as sockets do.
    ++counters_.exhausted_events;
    if (j.towards) {
      blocked_.insert(*j.towards);
    } else {
      exclusive_blocked_ = true;
    }
    // Nothing of this pool that could serve them is out: they would wait for nothing.
    if (!could_serve_locked(j.towards)) fail_locked(j.towards ? connecting_ : waiters_, j.towards, c.ec, failed);
    if (!waiters_.empty() || !connecting_.empty()) schedule_retry_locked();
    result = outcome::blocked;
  } else {
    // Permanent (not supported, access denied): every waiter hears it now
    // rather than waiting forever; a reservation that is gone ends the pool.
    ++counters_.creation_failures;
    if (chain) refill_scheduled_ = false;
    gone = reservation_gone(c.ec);
    if (!gone) {
      fail_locked(waiters_, std::nullopt, c.ec, failed);
      fail_locked(connecting_, std::nullopt, c.ec, failed);
    }
  }
  lock.unlock();
  if (c.socket) {
    c.socket->close();
    if (c.port != 0) {
      const auto towards = j.towards ? std::optional(destination{c.source, j.towards->peer, j.towards->peer_port})
                                     : std::nullopt;
      owner_of(keep_.get()).port_returned(token_, c.port, towards ? &*towards : nullptr, clock::now());
    }
  }
  for (auto& f : failed) f.waiter->complete(f.ec, {});
  if (gone) shut(c.ec);
  return result;
}

// A socket on a port nobody else uses goes to the first get waiting (a
// connect of its family where ports are exclusive), else to the first
// connect waiting for a port towards its peer, else to stock.
void pool_core::serve_or_stock(std::unique_lock<std::mutex>& lock, stock_entry entry) {
  if (closed_) {
    lock.unlock();
    entry.socket->close();
    owner_of(keep_.get()).port_returned(token_, entry.port, nullptr, clock::now());
    return;
  }
  const auto fits = [&](const waiter_entry& w) { return !w.towards || w.towards->peer.is_v6() == entry.source.is_v6(); };
  for (auto* queue : {&waiters_, &connecting_}) {
    const auto it = std::find_if(queue->begin(), queue->end(), fits);
    if (it == queue->end()) continue;
    auto w = std::move(it->waiter);
    const auto towards = it->towards;
    if (queue == &connecting_ && --queued_[*towards] == 0) queued_.erase(*towards);
    queue->erase(it);
    auto lease = lease_locked(std::move(entry), towards, false);
    lock.unlock();
    w->complete({}, std::move(lease));
    return;
  }
  ready_.push_back(std::move(entry));
}

// The block must be looked up in the registry's files: on the blocking
// pool, never on an io thread. The blocking thread hands the state and the
// socket (I/O objects) back to the executor before it lets go, so they are
// never destroyed off the I/O side, and close() waits for it: a pool
// destroyed, then its io_context, never leaves a bind running on the
// blocking pool.
void pool_core::bind_on_blocking_pool(job j, creation c) {
  auto held = std::make_shared<creation>(std::move(c));
  gate_->enter();
  const bool started = run_blocking(executor_, [self = shared_from_this(), held, j, gate = gate_]() mutable {
    self->bind(j, *held, true);
    const auto ex = self->executor_;
    asio::post(ex, [self = std::move(self), held = std::move(held), j] {
      if (self->finish(j, std::move(*held), true) != outcome::stopped) self->refill();
    });
    gate->leave();
  });
  if (!started) gate_->leave(); // its io_context is being destroyed: no bind
}

// Backends without a fast path (Windows native): the overlapped associate on
// the completion port (never the blocking IOCTL on an io thread), then bind
// (port 0: the OS picks from the reservation). The socket waits in pending_
// (closed by close(), which aborts the IOCTL), not in the handler.
void pool_core::associate_then_bind(creation c) {
  const auto handle = c.socket->handle();
  {
    std::lock_guard lock(mutex_);
    if (closed_) {
      refill_scheduled_ = false;
      return; // the socket closes as it goes out of scope
    }
    pending_ = std::move(c.socket);
  }
  detail::async_associate(executor_, handle, token_,
                          status_completion(
                              [self = shared_from_this(), source = c.source](std::error_code ec) mutable {
                                creation r;
                                r.source = source;
                                {
                                  std::lock_guard lock(self->mutex_);
                                  r.socket = std::move(self->pending_);
                                }
                                if (!r.socket) ec = error::pool_closed;
                                const auto local = owner_of(self->keep_.get()).pool_address(source);
                                if (!ec) r.port = detail::bind(r.socket->handle(), &local, ec);
                                r.ec = ec;
                                if (self->finish(job{}, std::move(r), true) != outcome::stopped) self->refill();
                              },
                              executor_));
}

// A returned TCP socket that was connected, on a port nobody else uses:
// where the OS can reuse it (Windows DisconnectEx with TF_REUSE_SOCKET) it is
// disconnected and goes back to stock with its port, still counted in use
// until then. False: the caller closes it as usual.
bool pool_core::recycle(pool_lease& lease) {
  if (!lease.socket->is_open() || !lease.socket->connected()) return false; // never connected, or reset
  std::lock_guard lock(mutex_);
  if (closed_) return false;
  recycling_.push_back(lease.socket.get());
  // Started under the lock: close() on another thread either runs first
  // (then we returned false above) or sees the socket in recycling_ and
  // closes it only once the disconnect is under way.
  const auto handle = lease.socket->handle();
  async_disconnect_for_reuse(executor_, handle,
                             status_completion(
                                 [self = shared_from_this(), l = std::move(lease)](std::error_code e) mutable {
                                   self->on_recycled(std::move(l), e);
                                 },
                                 executor_));
  return true;
}

void pool_core::on_recycled(pool_lease lease, std::error_code ec) {
  bool closed = false;
  {
    std::lock_guard lock(mutex_);
    std::erase(recycling_, lease.socket.get());
    closed = closed_;
    // The reused socket must still hold its port of the block.
    if (!ec && !closed && lease.socket->local_port() != lease.port) ec = error::not_associated;
    if (!closed) ++(ec ? counters_.recycle_failures : counters_.recycled);
  }
  if (ec || closed) {
    lease.socket->close();
    lease.socket.reset();
    returned(lease, true);
    return;
  }
  stock_entry entry{std::move(lease.socket), lease.port, lease.source};
  returned(lease, false);
  std::unique_lock lock(mutex_);
  serve_or_stock(lock, std::move(entry));
}

} // namespace portres::detail
