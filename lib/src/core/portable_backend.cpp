#include "core/portable_backend.hpp"

#include "platform.hpp"
#include "portres/reservation.hpp"

#include <asio/ip/address_v4.hpp>
#include <asio/ip/address_v6.hpp>

namespace portres::detail {

class portable_backend::block_state final : public owned_state {
public:
  block_state(backend& owner, protocol p, reservation r, asio::any_io_executor ex,
              std::unique_ptr<registry::lease> lease)
      : owned_state(owner, p, r, std::move(ex)), lease_(std::move(lease)), ports_(r.range) {}

  std::mutex mutex;                         // guards everything below
  std::unique_ptr<registry::lease> lease_;  // null once released (and for persistent blocks)
  bool released = false;
  port_block ports_;
};

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
  std::erase_if(runtime_, [](const auto& entry) { return entry.second.expired(); });
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
  if (ec) return; // would_block: retried on the blocking pool
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
  std::lock_guard lock(mutex_);
  // Entries of sockets closed before bind would pile up; drop dead ones as we go.
  if (associations_.size() > 4096) {
    std::erase_if(associations_, [](const auto& entry) { return entry.second.block.expired(); });
  }
  associations_[info.key] = {block, info.ipv6};
}

std::uint16_t portable_backend::bind(native_socket s, const asio::ip::address* local, std::error_code& ec) {
  // The hot path: one system call for the key, one for the bind.
  const auto key = platform::socket_key(s, ec);
  if (ec) return 0;
  block_ptr block;
  bool ipv6 = false;
  {
    std::lock_guard lock(mutex_);
    const auto it = associations_.find(key);
    if (it == associations_.end()) {
      ec = error::not_associated;
      return 0;
    }
    block = it->second.block.lock();
    ipv6 = it->second.ipv6;
    if (!block) associations_.erase(it);
  }
  if (!block) {
    ec = error::already_released;
    return 0;
  }
  const asio::ip::address address =
      local ? *local : (ipv6 ? asio::ip::address(asio::ip::address_v6::any()) : asio::ip::address(asio::ip::address_v4::any()));
  const auto port = bind_from(*block, s, address, ec);
  if (ec) {
    ec = explain_bind_failure(s, ec);
    return 0;
  }
  std::lock_guard lock(mutex_);
  associations_.erase(key);
  return port;
}

std::error_code portable_backend::explain_bind_failure(native_socket s, std::error_code ec) {
  // Bound since association: say so rather than pass on the OS's EINVAL.
  std::error_code inspect_ec;
  if (ec == condition::invalid_argument && platform::inspect(s, inspect_ec).bound_port != 0) return error::already_bound;
  return ec;
}

std::uint16_t portable_backend::bind_from(block_state& block, native_socket s, const asio::ip::address& address,
                                          std::error_code& ec) {
  std::lock_guard lock(block.mutex);
  if (block.released) {
    ec = error::already_released;
    return 0;
  }
  auto& ports = block.ports_;
  const auto range = ports.range();
  // Each port is tried at most once per reclaim pass, and there is one pass: bounded.
  std::uint32_t attempts = 0;
  bool reclaimed = false;
  while (attempts <= 2 * range.count()) {
    auto port = ports.take();
    if (!port && !reclaimed) {
      reclaimed = true;
      ports.reclaim_all();
      port = ports.take();
    }
    if (!port) break;
    ++attempts;
    const auto bind_ec = platform::bind_to(s, address, *port);
    if (!bind_ec) {
      ec.clear();
      return *port;
    }
    // Held by a socket (ours still open, an outside binder, or TIME_WAIT
    // without SO_REUSEADDR): leave it taken; a later reclaim retries it.
    if (bind_ec == condition::in_use || bind_ec == condition::access_denied) continue;
    ports.give_back(*port);
    ec = bind_ec;
    return 0;
  }
  ec = block_exhausted_error(range.first(), range.count());
  return 0;
}

} // namespace portres::detail
