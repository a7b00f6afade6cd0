#include "core/portable_backend.hpp"

#include "platform.hpp"
#include "portres/reservation.hpp"

#include <asio/ip/address_v4.hpp>
#include <asio/ip/address_v6.hpp>
#include <asio/detail/socket_ops.hpp>

#include <gsl/gsl>

#include <algorithm>
#include <atomic>
#include <string>
#include <utility>
#include <vector>

namespace portres::detail {

class portable_backend::block_state final : public owned_state {
public:
  block_state(backend& owner, protocol p, reservation r, asio::any_io_executor ex,
              std::unique_ptr<registry::lease> lease)
      : owned_state(owner, p, r, std::move(ex)), lease_(std::move(lease)), ports_(r.range), reclaim(r.range),
        shared(r.range) {}

  std::mutex mutex;                         // guards everything below
  std::unique_ptr<registry::lease> lease_;  // null once released (and for persistent blocks)
  bool released = false;
  port_block ports_;
  port_reclaim reclaim; // taken ports that may have come back: probed first when the block runs dry
  // The kernel's view of the block's held ports: asked only when the block
  // looks full, and not again within held_ttl unless the last answer freed ports.
  port_bitmap held;
  std::chrono::steady_clock::time_point held_at{};
  bool held_valid = false;
  std::size_t held_freed = 0;
  destination_ports shared; // TCP: ports carrying connections per destination (owned in ports_)
};

namespace {
std::atomic<std::uint64_t> bind_attempt_count{0};
std::atomic<std::uint64_t> held_query_count{0};
std::atomic<std::uint64_t> probe_count{0};
constexpr std::chrono::milliseconds held_ttl{100};
constexpr int binds_per_pass = 8;
} // namespace

std::uint64_t bind_attempts() noexcept { return bind_attempt_count.load(std::memory_order_relaxed); }
std::uint64_t held_port_queries() noexcept { return held_query_count.load(std::memory_order_relaxed); }
std::uint64_t port_probes() noexcept { return probe_count.load(std::memory_order_relaxed); }

namespace {
// Tracked uses (portres::bind towards a peer) whose socket is gone give their ports back.
std::size_t reclaim_shared(destination_ports& shared, port_block& ports, const destination* d,
                           std::chrono::steady_clock::time_point now) {
  return shared.reclaim(
      ports, d, [](const destination_ports::tracked_socket& s, std::uint16_t port) {
        return platform::socket_alive(s.handle, s.key, port);
      },
      now);
}
} // namespace

portable_backend::portable_backend(backend_kind kind, std::shared_ptr<registry> reg)
    : kind_(kind), registry_(std::move(reg)) {}

reservation_token portable_backend::new_token() {
  // Random 64-bit values drawn from the OS for each token (getrandom on
  // Linux): unguessable, never zero, unique among this process' live tokens.
  while (true) {
    const reservation_token t{platform::os_random_u64()};
    if (t && !runtime_.contains(t)) return t;
  }
}

state_ptr portable_backend::acquire(const asio::any_io_executor& ex, protocol p, port_range r, blocking b,
                                    std::error_code& ec) {
  reservation_token token;
  port_range granted;
  std::unique_ptr<registry::lease> lease;
  // A token collision with another process' live file is retried (bounded).
  for (int attempt = 0; attempt < 4; ++attempt) {
    {
      std::lock_guard lock(mutex_);
      token = new_token();
    }
    lease = registry_->grant(p, r, token, b, granted, ec);
    if (ec != std::errc::file_exists) break;
  }
  if (ec) return nullptr;
  auto state = std::make_shared<block_state>(*this, p, reservation{granted, token}, ex, std::move(lease));
  std::lock_guard lock(mutex_);
  // Dead entries (reservations destroyed without release) are dropped when
  // the table has doubled since the last sweep: amortized O(1) per acquire,
  // so acquiring costs the same with 1,000 live reservations as with none.
  if (runtime_.size() >= runtime_sweep_at_) {
    std::erase_if(runtime_, [](const auto& entry) { return entry.second.expired(); });
    runtime_sweep_at_ = std::max<std::size_t>(64, 2 * runtime_.size());
  }
  runtime_.emplace(token, state);
  return state;
}

void portable_backend::release(owned_state& s, blocking b, std::error_code& ec) {
  auto& block = static_cast<block_state&>(s);
  std::unique_lock lock(block.mutex);
  if (block.released || !block.lease_) {
    ec = error::already_released;
    return;
  }
  registry_->release(*block.lease_, b, ec);
  // would_block: retried on the blocking pool; aborted: the grant already
  // ended (Linux: the broker went away), so it is released all the same.
  if (ec && ec != condition::aborted) return;
  block.released = true;
  block.lease_.reset();
  lock.unlock();
  std::lock_guard table(mutex_);
  runtime_.erase(s.granted().token);
}

void portable_backend::set_port_policy(owned_state& s, port_policy policy, std::error_code& ec) {
  auto& block = static_cast<block_state&>(s);
  std::lock_guard lock(block.mutex);
  ec.clear();
  block.ports_.set_policy(policy);
}

portable_backend::block_ptr portable_backend::find_block(protocol p, reservation_token t, blocking b,
                                                         std::error_code& ec) {
  {
    std::lock_guard lock(mutex_);
    if (auto it = runtime_.find(t); it != runtime_.end()) {
      if (auto block = it->second.lock()) return block;
    }
    if (auto it = persistent_.find(t); it != persistent_.end()) {
      if ((ec = registry_->persistent_access())) return nullptr;
      return it->second;
    }
  }
  // Anything else reads the registry's files: never on an io thread.
  if (b == blocking::forbidden) {
    ec = std::make_error_code(std::errc::operation_would_block);
    return nullptr;
  }
  const auto block = registry_->persistent_block(p, t, b, ec);
  if (ec) return nullptr;
  if (!block) {
    ec = registry_->classify_unknown(t, b);
    return nullptr;
  }
  std::lock_guard lock(mutex_);
  auto& entry = persistent_[t];
  if (!entry) entry = std::make_shared<block_state>(*this, p, reservation{*block, t}, asio::any_io_executor(), nullptr);
  return entry;
}

void portable_backend::associate(native_socket s, reservation_token t, blocking b, std::error_code& ec) {
  if (!t) {
    ec = error::invalid_token;
    return;
  }
  const auto info = platform::inspect(s, ec);
  if (ec) return;
  associate_inspected(s, info, t, b, ec);
}

void portable_backend::associate_as(native_socket s, protocol p, reservation_token t, blocking b,
                                    std::error_code& ec) {
  if (!t) {
    ec = error::invalid_token;
    return;
  }
  // The protocol comes from the socket's type: only the key and the local
  // address (family, bound yet?) are asked, two system calls instead of five.
  platform::socket_info info;
  info.proto = p;
  info.key = platform::socket_key(s, ec);
  if (ec) return;
  asio::detail::sockaddr_storage_type local{};
  std::size_t size = sizeof local;
  asio::error_code name_ec;
  if (asio::detail::socket_ops::getsockname(s, reinterpret_cast<asio::detail::socket_addr_type*>(&local), &size,
                                            name_ec) != 0) {
    // Windows refuses getsockname on an unbound socket (WSAEINVAL): ask in full.
    associate(s, t, b, ec);
    return;
  }
  if (local.ss_family == AF_INET6) {
    info.ipv6 = true;
    info.bound_port = asio::detail::socket_ops::network_to_host_short(
        reinterpret_cast<const asio::detail::sockaddr_in6_type&>(local).sin6_port);
  } else if (local.ss_family == AF_INET) {
    info.bound_port = asio::detail::socket_ops::network_to_host_short(
        reinterpret_cast<const asio::detail::sockaddr_in4_type&>(local).sin_port);
  } else {
    ec = error::unsupported_socket;
    return;
  }
  associate_inspected(s, info, t, b, ec);
}

void portable_backend::associate_inspected(native_socket, const platform::socket_info& info, reservation_token t,
                                           blocking b, std::error_code& ec) {
  if (info.bound_port != 0) {
    ec = error::already_bound;
    return;
  }
  {
    std::lock_guard lock(mutex_);
    if (auto it = associations_.find(info.key);
        it != associations_.end() && !it->second.block.expired() && platform::socket_key_is_unique()) {
      ec = error::already_associated;
      return;
    }
  }
  auto block = find_block(info.proto, t, b, ec);
  if (ec) return;
  if (block->proto() != info.proto) {
    ec = error::unsupported_socket;
    return;
  }
  {
    std::lock_guard held(block->mutex);
    if (block->lease_ && (ec = block->lease_->lost())) return;
  }
  std::lock_guard lock(mutex_);
  // Entries of sockets closed before bind would pile up; drop dead ones as we go.
  if (associations_.size() > 4096) {
    std::erase_if(associations_, [](const auto& entry) { return entry.second.block.expired(); });
  }
  associations_[info.key] = {block, info.ipv6};
}

portable_backend::block_ptr portable_backend::associated_block(native_socket s, std::uint64_t& key, bool& ipv6,
                                                              std::error_code& ec) {
  key = platform::socket_key(s, ec);
  if (ec) return nullptr;
  block_ptr block;
  {
    std::lock_guard lock(mutex_);
    const auto it = associations_.find(key);
    if (it == associations_.end()) {
      ec = error::not_associated;
      return nullptr;
    }
    block = it->second.block.lock();
    ipv6 = it->second.ipv6;
    if (!block) associations_.erase(it);
  }
  if (!block) ec = error::already_released;
  return block;
}

std::uint16_t portable_backend::bind(native_socket s, const asio::ip::address* local, std::error_code& ec) {
  // The hot path: one system call for the key, one for the bind.
  std::uint64_t key = 0;
  bool ipv6 = false;
  const auto block = associated_block(s, key, ipv6, ec);
  if (!block) return 0;
  const asio::ip::address address =
      local ? *local : (ipv6 ? asio::ip::address(asio::ip::address_v6::any()) : asio::ip::address(asio::ip::address_v4::any()));
  return bound(s, key, bind_from(*block, s, address, false, ec), ec);
}

std::uint16_t portable_backend::bound(native_socket s, std::uint64_t key, std::uint16_t port, std::error_code& ec) {
  if (ec) {
    ec = explain_bind_failure(s, ec);
    return 0;
  }
  std::lock_guard lock(mutex_);
  associations_.erase(key); // used up
  return port;
}

std::error_code portable_backend::explain_bind_failure(native_socket s, std::error_code ec) {
  // Bound since association: say so rather than pass on the OS's EINVAL.
  std::error_code inspect_ec;
  if (ec == condition::invalid_argument && platform::inspect(s, inspect_ec).bound_port != 0) return error::already_bound;
  return ec;
}

std::uint16_t portable_backend::bind_fresh(native_socket s, protocol p, reservation_token t,
                                          const asio::ip::address& local, blocking b, std::error_code& ec) {
  // A socket the library just opened: no inspection, no association entry.
  auto block = find_block(p, t, b, ec);
  if (ec) return 0;
  if (block->proto() != p) {
    ec = error::unsupported_socket;
    return 0;
  }
  // A TCP pool's socket may later carry its connection on a shared port.
  if (p == protocol::tcp && (ec = platform::share_address(s))) return 0;
  // Owned: the pool returns this port when its socket comes back (port_returned).
  return bind_from(*block, s, local, true, ec);
}

portable_backend::block_ptr portable_backend::live_block(reservation_token t) {
  std::lock_guard lock(mutex_);
  if (auto it = runtime_.find(t); it != runtime_.end()) {
    if (auto block = it->second.lock()) return block;
  }
  if (auto it = persistent_.find(t); it != persistent_.end()) return it->second;
  return nullptr;
}

void portable_backend::port_returned(reservation_token t, std::uint16_t port, const destination* towards,
                                     std::chrono::steady_clock::time_point ready_at) {
  const auto block = live_block(t);
  if (!block) return;
  std::lock_guard lock(block->mutex);
  if (!block->ports_.range().contains(port)) return;
  // Its socket is closed: a kernel answer from before must not keep it taken.
  block->held.reset(port);
  if (towards) {
    block->shared.remove(block->ports_, *towards, port, ready_at);
  } else {
    block->ports_.give_back(port, ready_at);
  }
}

std::uint16_t portable_backend::bind_from(block_state& block, native_socket s, const asio::ip::address& address,
                                          bool owned, std::error_code& ec) {
  std::lock_guard lock(block.mutex);
  if (block.released) {
    ec = error::already_released;
    return 0;
  }
  if (block.lease_ && (ec = block.lease_->lost())) return 0; // never bind from a block the broker forgot
  auto& ports = block.ports_;
  const auto range = ports.range();
  // Bounded: a few binds; when the block looks full, a few probes of the
  // taken ports likeliest to have come back, and only if they find none one
  // kernel query of its held ports; then a few more binds.
  bool queried = false; // a listing made in this call stays fresh for it, however long it took
  std::error_code unanswered; // the probes and the listing both failed: the block may not be full
  for (int pass = 0; pass < 2; ++pass) {
    const auto now = std::chrono::steady_clock::now();
    const bool held_fresh = block.held_valid && (queried || now - block.held_at < held_ttl);
    for (int tried = 0; tried < binds_per_pass;) {
      auto port = ports.take(now);
      if (!port) break;
      if (held_fresh && block.held.test(*port)) { // held: stays taken, probed again later
        block.reclaim.held(*port);
        continue;
      }
      ++tried;
      bind_attempt_count.fetch_add(1, std::memory_order_relaxed);
      const auto bind_ec = platform::bind_to(s, address, *port);
      if (!bind_ec) {
        // Owned ports come back through port_returned; others only by a probe or the query.
        if (owned) {
          ports.mark_owned(*port);
        } else {
          block.reclaim.handed_out(*port);
        }
        ec.clear();
        return *port;
      }
      // Held by a socket (ours still open, an outside binder, or TIME_WAIT
      // without SO_REUSEADDR): it stays taken until a probe finds it free.
      if (bind_ec == condition::in_use || bind_ec == condition::access_denied) {
        block.reclaim.held(*port);
        continue;
      }
      ports.give_back(*port);
      ec = bind_ec;
      return 0;
    }
    if (pass == 1) break;
    std::error_code probe_ec;
    const auto probe = [&block](std::span<const std::uint16_t> candidates, std::error_code& e) {
      probe_count.fetch_add(candidates.size(), std::memory_order_relaxed);
      return platform::unheld_ports(block.proto(), candidates, e);
    };
    if (block.reclaim.probe(ports, probe, probe_ec) != 0) {
      block.held_valid = false; // the listing is older than what the probes just saw
      continue;
    }
    // Ask the kernel again only when the last answer is old or freed ports.
    if (held_fresh && block.held_freed == 0) break;
    std::error_code held_ec;
    held_query_count.fetch_add(1, std::memory_order_relaxed);
    block.held = platform::held_ports(block.proto(), range, held_ec);
    if (held_ec) {
      // E.g. EMFILE for both: say so rather than "exhausted" (Windows has no probe to fail).
      if (probe_ec && probe_ec != error::os_unsupported) unanswered = probe_ec;
      break;
    }
    block.held_at = now;
    block.held_valid = true;
    queried = true;
    block.held_freed = ports.reclaim_unheld(block.held) + reclaim_shared(block.shared, ports, nullptr, now);
    block.reclaim.forget_free(ports);
  }
  ec = unanswered ? unanswered : block_exhausted_error(range.first(), range.count());
  return 0;
}

// Port sharing (TCP): a port carries one connection per destination.

std::uint16_t portable_backend::bind_towards(native_socket s, std::span<const asio::ip::address> sources,
                                             const asio::ip::address& peer, std::uint16_t peer_port,
                                             std::error_code& ec) {
  std::uint64_t key = 0;
  bool ipv6 = false;
  const auto block = associated_block(s, key, ipv6, ec);
  if (!block) return 0;
  // Only addresses of the socket's family; none given: its any-address.
  std::vector<asio::ip::address> usable;
  for (const auto& a : sources) {
    if (a.is_v6() == ipv6) usable.push_back(a);
  }
  if (sources.empty()) usable.push_back(ipv6 ? asio::ip::address(asio::ip::address_v6::any())
                                             : asio::ip::address(asio::ip::address_v4::any()));
  if (usable.empty()) {
    ec = std::make_error_code(std::errc::address_family_not_supported);
    return 0;
  }
  std::uint16_t port = 0;
  if (!shares_ports(block->proto())) {
    // UDP keeps one socket per port (docs/architecture.md, "Port sharing"),
    // and so does TCP where the OS cannot share a port safely.
    port = bind_from(*block, s, usable.front(), false, ec);
  } else {
    const destination_ports::tracked_socket tracked{s, key};
    asio::ip::address source;
    port = bind_shared(*block, s, usable, peer, peer_port, &tracked, source, ec);
  }
  return bound(s, key, port, ec);
}

std::uint16_t portable_backend::bind_fresh_towards(native_socket s, reservation_token t,
                                                   std::span<const asio::ip::address> sources,
                                                   const asio::ip::address& peer, std::uint16_t peer_port, blocking b,
                                                   asio::ip::address& source, std::error_code& ec) {
  auto block = find_block(protocol::tcp, t, b, ec);
  if (ec) return 0;
  if (!shares_ports(block->proto())) { // the pool binds for a peer only where ports are shared
    ec = error::unsupported_socket;
    return 0;
  }
  return bind_shared(*block, s, sources, peer, peer_port, nullptr, source, ec);
}

std::uint16_t portable_backend::bind_shared(block_state& block, native_socket s,
                                            std::span<const asio::ip::address> sources, const asio::ip::address& peer,
                                            std::uint16_t peer_port, const destination_ports::tracked_socket* tracked,
                                            asio::ip::address& source, std::error_code& ec) {
  Expects(!sources.empty());
  if ((ec = platform::share_address(s))) return 0;
  std::lock_guard lock(block.mutex);
  if (block.released) {
    ec = error::already_released;
    return 0;
  }
  if (block.lease_ && (ec = block.lease_->lost())) return 0;
  auto& ports = block.ports_;
  // The least used source towards this peer first, then the least used in
  // the block: ordered by the block alone, one source could take every
  // connection to one peer and look full towards it, and each later bind
  // would pay a check of every tracked socket before trying the next source.
  std::vector<asio::ip::address> order(sources.begin(), sources.end());
  const auto use = [&](const asio::ip::address& from) {
    return std::pair(block.shared.headroom(ports, destination{from, peer, peer_port}).live, block.shared.live_from(from));
  };
  std::stable_sort(order.begin(), order.end(), [&](const auto& a, const auto& b) { return use(a) < use(b); });
  const auto now = std::chrono::steady_clock::now();
  for (const auto& from : order) {
    const destination d{from, peer, peer_port};
    bool reclaimed = false;
    // Bounded: a few binds, then (towards a destination that looks full)
    // one check of the tracked sockets, then a few more.
    for (int tried = 0; tried < 2 * binds_per_pass;) {
      const auto chosen = block.shared.choose(ports, d, now);
      if (!chosen) {
        if (reclaimed || reclaim_shared(block.shared, ports, &d, now) == 0) break;
        reclaimed = true;
        continue;
      }
      ++tried;
      bind_attempt_count.fetch_add(1, std::memory_order_relaxed);
      const auto bind_ec = platform::bind_to(s, from, chosen->port);
      if (!bind_ec) {
        block.shared.add(ports, d, chosen->port, chosen->fresh, tracked);
        source = from;
        ec.clear();
        return chosen->port;
      }
      // Held by an outside socket: a fresh port stays taken (a held-ports
      // query frees it later); a shared one stays with its connections.
      if (bind_ec == condition::in_use || bind_ec == condition::access_denied) continue;
      if (chosen->fresh) ports.give_back(chosen->port);
      ec = bind_ec;
      return 0;
    }
  }
  const auto range = ports.range();
  ec = destination_exhausted_error(range.first(), range.count(), endpoint_text(peer, peer_port));
  return 0;
}

void portable_backend::share_port(reservation_token t, std::uint16_t port, const destination& d) {
  const auto block = live_block(t);
  if (!block) return;
  std::lock_guard lock(block->mutex);
  if (block->ports_.range().contains(port)) block->shared.add(block->ports_, d, port, false, nullptr);
}

void portable_backend::port_released(reservation_token t, std::uint16_t port, const destination* towards,
                                     native_socket s) {
  const auto block = live_block(t);
  if (!block) return;
  std::error_code ec;
  const auto key = platform::socket_key(s, ec);
  std::lock_guard lock(block->mutex);
  if (!block->ports_.range().contains(port)) return;
  if (!towards) {
    block->ports_.disown(port);
  } else if (!ec) {
    block->shared.track(*towards, port, {s, key});
  }
}

destination_headroom portable_backend::headroom(reservation_token t, std::span<const asio::ip::address> sources,
                                                const asio::ip::address& peer, std::uint16_t peer_port) {
  destination_headroom total;
  const auto block = live_block(t);
  if (!block) return total;
  std::lock_guard lock(block->mutex);
  if (!shares_ports(block->proto())) {
    // One socket per port: a free port serves one source, not one per source.
    total.free_ports = block->ports_.free_count();
    return total;
  }
  const auto add = [&](const asio::ip::address& from) {
    const auto h = block->shared.headroom(block->ports_, destination{from, peer, peer_port});
    total.free_ports += h.free_ports;
    total.live += h.live;
  };
  if (sources.empty()) {
    add(peer.is_v6() ? asio::ip::address(asio::ip::address_v6::any()) : asio::ip::address(asio::ip::address_v4::any()));
  }
  for (const auto& from : sources) add(from);
  return total;
}

std::size_t portable_backend::free_ports(reservation_token t) {
  const auto block = live_block(t);
  if (!block) return 0;
  std::lock_guard lock(block->mutex);
  return block->ports_.free_count();
}

std::error_code portable_backend::status(owned_state& s) {
  auto& block = static_cast<block_state&>(s);
  std::lock_guard lock(block.mutex);
  if (block.released) return error::reservation_released;
  return block.lease_ ? block.lease_->lost() : std::error_code();
}

} // namespace portres::detail
