// The pool core: handing sockets out, waiting for them, taking them back.
// Creating them is in pool_refill.cpp.
#include "core/pool_internal.hpp"

#include <asio/post.hpp>

#include <algorithm>

namespace portres::detail {

namespace {
bool same_family(const asio::ip::address& a, const asio::ip::address& b) { return a.is_v6() == b.is_v6(); }
} // namespace

pool_core::pool_core(const asio::any_io_executor& ex, state_ptr keep, reservation_token token, protocol p,
                     std::vector<asio::ip::address> sources, pool_settings settings)
    : executor_(ex), keep_(std::move(keep)), token_(token), protocol_(p), sources_(std::move(sources)),
      settings_(settings), retry_delay_(first_retry_delay), retry_(ex),
      gate_(std::make_shared<pool_blocking_gate>()) {
  if (sources_.empty()) {
    throw std::system_error(std::make_error_code(std::errc::invalid_argument), "portres::socket_pool: no source address");
  }
  if (settings_.high_water < settings_.low_water) settings_.high_water = settings_.low_water;
  if (p == protocol::tcp) {
    reuse_ = socket_reuse_available();
    sharing_ = owner_of(keep_.get()).shares_ports(p);
  }
}

pool_core::~pool_core() = default;

void pool_core::start() {
  if (keep_) keep_->watch(std::weak_ptr<reservation_watcher>(shared_from_this()));
  std::lock_guard lock(mutex_);
  schedule_refill_locked();
}

std::error_code pool_core::reservation_status() {
  return keep_ ? owner_of(keep_.get()).status(static_cast<owned_state&>(*keep_)) : std::error_code();
}

std::vector<asio::ip::address> pool_core::sources_for(const asio::ip::address& peer) const {
  std::vector<asio::ip::address> usable;
  for (const auto& a : sources_) {
    if (same_family(a, peer)) usable.push_back(a);
  }
  return usable;
}

pool_lease pool_core::lease_locked(stock_entry entry, const std::optional<destination>& towards, bool bound_towards) {
  pool_lease l;
  l.pool = shared_from_this();
  l.socket = std::move(entry.socket);
  l.port = entry.port;
  l.source = entry.source;
  ++in_use_;
  if (towards) {
    l.towards = destination{entry.source, towards->peer, towards->peer_port};
    ++live_[*towards];
    if (sharing_) {
      // A ready socket's port was nobody else's: now it carries this connection.
      if (!bound_towards) owner_of(keep_.get()).share_port(token_, l.port, *l.towards);
      l.shared = true;
    }
  }
  if (!l.shared) ++exclusive_in_use_;
  return l;
}

std::optional<pool_lease> pool_core::take_ready_locked(const std::optional<destination>& towards) {
  auto it = ready_.begin();
  if (towards) {
    it = std::find_if(ready_.begin(), ready_.end(), [&](const auto& e) { return same_family(e.source, towards->peer); });
  }
  if (it == ready_.end()) return std::nullopt;
  auto entry = std::move(*it);
  ready_.erase(it);
  ++counters_.hits;
  if (ready_.size() < settings_.low_water) schedule_refill_locked();
  return lease_locked(std::move(entry), towards, false);
}

void pool_core::enqueue_locked(std::deque<waiter_entry>& queue, std::optional<destination> towards,
                               std::unique_ptr<pool_waiter> w) {
  const auto id = ++next_waiter_id_;
  if (auto slot = w->slot(); slot.is_connected()) {
    // Posted, so the waiter is never completed (and the slot cleared) from
    // inside the cancellation signal's own call.
    slot.assign([weak = weak_from_this(), ex = executor_, id](asio::cancellation_type) {
      asio::post(ex, [weak, id] {
        if (auto self = weak.lock()) self->cancel_waiter(id);
      });
    });
  }
  if (towards && &queue == &connecting_) ++queued_[*towards];
  queue.push_back({id, std::move(towards), std::move(w)});
}

bool pool_core::settle_locked(std::unique_lock<std::mutex>& lock, std::unique_ptr<pool_waiter>& w,
                              const std::optional<destination>& towards) {
  std::error_code ec;
  std::optional<pool_lease> lease;
  if (closed_) {
    ec = why_;
  } else if ((lease = take_ready_locked(towards))) {
  } else if (waiters_.size() + connecting_.size() >= settings_.max_waiters) {
    ec = error::too_many_waiters;
  } else {
    return false;
  }
  lock.unlock();
  w->complete(ec, lease ? std::move(*lease) : pool_lease());
  return true;
}

void pool_core::get(std::unique_ptr<pool_waiter> w) { wait_for_socket(std::move(w), std::nullopt); }

void pool_core::wait_for_socket(std::unique_ptr<pool_waiter> w, std::optional<destination> towards) {
  std::unique_lock lock(mutex_);
  if (settle_locked(lock, w, towards)) return;
  // About to wait: a reservation that is gone (its broker went away) ends
  // the pool now rather than leave the waiter waiting.
  lock.unlock();
  if (const auto gone = reservation_status()) shut(gone);
  lock.lock();
  if (settle_locked(lock, w, towards)) return;
  ++counters_.misses;
  enqueue_locked(waiters_, std::move(towards), std::move(w));
  schedule_refill_locked();
}

void pool_core::get_towards(const asio::ip::address& peer, std::uint16_t peer_port, std::unique_ptr<pool_waiter> w) {
  const destination want{asio::ip::address(), peer, peer_port};
  if (sources_for(peer).empty()) {
    // No source address of the peer's family: nothing could ever serve it.
    w->complete(std::make_error_code(std::errc::address_family_not_supported), {});
    return;
  }
  // Exclusive ports: any socket of the peer's family serves it.
  if (!sharing_) return wait_for_socket(std::move(w), want);
  std::unique_lock lock(mutex_);
  if (settle_locked(lock, w, want)) return;
  const bool behind_others = queued_.contains(want); // first come, first served per peer
  const auto id = next_waiter_id_ + 1;
  enqueue_locked(connecting_, want, std::move(w));
  if (behind_others) {
    ++counters_.misses;
    schedule_refill_locked();
    return;
  }
  lock.unlock();
  // Nobody waits for this peer: bind a socket for it here, no hop through the executor.
  const job j{want};
  auto c = create(j, false);
  if (c.ec == std::errc::operation_would_block) {
    c.socket.reset(); // the block must be looked up off this thread: the refill does it
    lock.lock();
    ++counters_.misses;
    schedule_refill_locked();
    return;
  }
  finish(j, std::move(c), false);
  lock.lock();
  const bool waiting = std::any_of(connecting_.rbegin(), connecting_.rend(), [id](const auto& e) { return e.id == id; });
  ++(waiting ? counters_.misses : counters_.hits);
}

pool_lease pool_core::try_get(std::error_code& ec) {
  std::lock_guard lock(mutex_);
  if (closed_) {
    ec = why_;
    return {};
  }
  auto lease = take_ready_locked(std::nullopt);
  if (!lease) {
    ec = std::make_error_code(std::errc::operation_would_block);
    return {};
  }
  ec.clear();
  return std::move(*lease);
}

void pool_core::cancel_waiter(std::uint64_t id) {
  std::unique_lock lock(mutex_);
  for (auto* queue : {&waiters_, &connecting_}) {
    const auto it = std::find_if(queue->begin(), queue->end(), [id](const auto& e) { return e.id == id; });
    if (it == queue->end()) continue;
    auto w = std::move(it->waiter);
    if (queue == &connecting_ && --queued_[*it->towards] == 0) queued_.erase(*it->towards);
    queue->erase(it);
    lock.unlock();
    w->complete(std::error_code(asio::error::operation_aborted), {});
    return;
  }
}

void pool_core::close() { shut(error::pool_closed); }

void pool_core::reservation_ended(std::error_code why) noexcept { shut(why); }

void pool_core::shut(std::error_code why) {
  std::deque<waiter_entry> waiting, connecting;
  std::deque<stock_entry> stock;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    closed_ = true;
    why_ = why == error::already_released ? std::error_code(error::reservation_released) : why;
    waiting.swap(waiters_);
    connecting.swap(connecting_);
    queued_.clear();
    stock.swap(ready_);
    retry_.cancel();
    if (pending_) pending_->close(); // aborts its associate
    pending_.reset();
    for (auto* s : recycling_) s->close(); // aborts its pending disconnect (started under this lock)
  }
  gate_->wait_idle(); // a bind on the blocking pool is short; it hands back before it ends
  for (auto* queue : {&waiting, &connecting}) {
    for (auto& w : *queue) w.waiter->complete(why_, {});
  }
  for (auto& s : stock) {
    s.socket->close();
    owner_of(keep_.get()).port_returned(token_, s.port, nullptr, clock::now()); // never connected: free at once
  }
}

pool_stats pool_core::stats() const {
  std::lock_guard lock(mutex_);
  auto s = counters_;
  s.ready = ready_.size();
  s.in_use = in_use_;
  s.waiters = waiters_.size() + connecting_.size();
  s.destinations = live_.size();
  for (const auto& [peer, count] : live_) s.connections += count;
  return s;
}

destination_headroom pool_core::headroom(const asio::ip::address& peer, std::uint16_t peer_port) const {
  auto h = owner_of(keep_.get()).headroom(token_, sources_for(peer), peer, peer_port);
  std::lock_guard lock(mutex_);
  // Ready sockets hold ports nobody else uses: each can connect towards it.
  h.free_ports += static_cast<std::size_t>(
      std::count_if(ready_.begin(), ready_.end(), [&](const auto& e) { return same_family(e.source, peer); }));
  const auto it = live_.find(destination{asio::ip::address(), peer, peer_port});
  h.live = it == live_.end() ? 0 : it->second;
  return h;
}

bool pool_core::could_serve_locked(const std::optional<destination>& towards) const {
  // A waiter waits only while a socket of this pool that could serve it is
  // out: any (its port comes back), or for a peer, one whose port is nobody
  // else's or one connected towards that peer.
  if (!towards) return in_use_ > 0;
  return exclusive_in_use_ > 0 || live_.contains(*towards);
}

void pool_core::give_back(pool_lease& lease) noexcept {
  if (!lease.socket) return;
  if (reuse_ && !lease.shared && recycle(lease)) return;
  // Where sockets cannot be reused, closing frees the port for the block
  // (TIME_WAIT permitting) and the pool creates a fresh one.
  lease.socket->close();
  lease.socket.reset();
  returned(lease, true);
}

void pool_core::hand_over(pool_lease& lease, native_socket handle) noexcept {
  // Its port comes back to the block once the user's socket is gone.
  owner_of(keep_.get()).port_released(token_, lease.port, lease.shared ? &*lease.towards : nullptr, handle);
  returned(lease, false);
  lease.socket.reset();
}

void pool_core::connect_retried() noexcept {
  std::lock_guard lock(mutex_);
  ++counters_.connect_retries;
}

void pool_core::returned(pool_lease& lease, bool give_port_back) noexcept {
  if (give_port_back && lease.port != 0) {
    // TCP: its last connection may still be closing (FIN_WAIT), so the port
    // rests while others are free.
    const auto rest = protocol_ == protocol::tcp ? clock::duration(settings_.rest_interval) : clock::duration::zero();
    owner_of(keep_.get()).port_returned(token_, lease.port, lease.shared ? &*lease.towards : nullptr,
                                        clock::now() + rest);
  }
  std::lock_guard lock(mutex_);
  --in_use_;
  if (!lease.shared) --exclusive_in_use_;
  if (lease.towards) {
    const destination peer{asio::ip::address(), lease.towards->peer, lease.towards->peer_port};
    if (const auto it = live_.find(peer); it != live_.end() && --it->second == 0) live_.erase(it);
    blocked_.erase(peer);
  }
  // A port nobody else used now is free for everyone; a shared one, towards
  // its peer (and for everyone once its last connection is gone).
  if (!lease.shared && !blocked_.empty()) blocked_.clear();
  exclusive_blocked_ = false;
  if (!waiters_.empty() || !connecting_.empty() || ready_.size() < settings_.low_water) schedule_refill_locked();
}

} // namespace portres::detail
