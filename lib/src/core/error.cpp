#include "portres/error.hpp"

#include "platform.hpp"

#include <asio/error.hpp>

#include <cerrno>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace portres {
namespace {

std::string message_of(error e) {
  switch (e) {
  case error::zero_count: return "port range has a count of zero";
  case error::range_past_end: return "port range runs past port 65535";
  case error::wildcard_not_allowed: return "a wildcard range (start port 0) is not allowed here; name a specific block";
  case error::invalid_token: return "the reservation token is zero (invalid)";
  case error::unknown_token: return "no live reservation has this token";
  case error::foreign_token: return "the reservation token belongs to another process";
  case error::already_released: return "the reservation was already released";
  case error::already_associated: return "the socket is already associated with a reservation";
  case error::already_bound: return "the socket is already bound; associate before bind";
  case error::not_associated: return "the socket is not associated with a reservation";
  case error::socket_not_open: return "the socket is not open";
  case error::unsupported_socket: return "the socket is not a TCP or UDP socket of the reservation's protocol";
  case error::block_exhausted: return "no free port left in the reserved block";
  case error::block_unavailable: return "no free block of the requested size is available";
  case error::port_in_use: return "a port of the block is in use";
  case error::overlaps_reservation: return "the block overlaps another reservation";
  case error::backend_unavailable: return "the selected portres backend is not available on this machine";
  case error::privilege_required: return "the operation needs root (administrator) rights";
  case error::malformed_state: return "a portres registry or store file is malformed";
  case error::unsafe_path: return "a portres state path is a symlink or writable by others";
  case error::pool_closed: return "the socket pool is closed";
  case error::too_many_waiters: return "the socket pool's waiter limit is exceeded";
  case error::bad_response: return "the operating system returned a malformed result";
  case error::os_unsupported: return "the operating system does not provide this function";
  case error::ephemeral_starved:
    return "the block would leave fewer than the required share of the ephemeral port range free "
           "(PORTRES_EPHEMERAL_FREE_SHARE, default 0.5; 'portres add --force' overrides)";
  case error::reservation_released:
    return "the pool's reservation was released, so it has no ports left to give; acquire a new one";
  }
  return "unknown portres error " + std::to_string(static_cast<int>(e));
}

std::optional<condition> condition_of(error e) noexcept {
  switch (e) {
  case error::zero_count:
  case error::range_past_end:
  case error::wildcard_not_allowed:
  case error::invalid_token:
  case error::unknown_token:
  case error::foreign_token:
  case error::already_released:
  case error::already_associated:
  case error::already_bound:
  case error::not_associated:
  case error::socket_not_open:
  case error::unsupported_socket:
  case error::malformed_state: return condition::invalid_argument;
  case error::block_exhausted:
  case error::block_unavailable:
  case error::too_many_waiters:
  case error::ephemeral_starved: return condition::exhausted;
  case error::reservation_released: return condition::aborted;
  case error::port_in_use:
  case error::overlaps_reservation: return condition::in_use;
  case error::backend_unavailable:
  case error::os_unsupported: return condition::not_supported;
  case error::privilege_required:
  case error::unsafe_path: return condition::access_denied;
  case error::pool_closed: return condition::aborted;
  case error::bad_response: return std::nullopt;
  }
  return std::nullopt;
}

class error_category_impl final : public std::error_category {
public:
  const char* name() const noexcept override { return "portres"; }
  std::string message(int value) const override { return message_of(static_cast<error>(value)); }
  std::error_condition default_error_condition(int value) const noexcept override {
    if (auto c = condition_of(static_cast<error>(value))) return *c;
    return {value, *this};
  }
};

class condition_category_impl final : public std::error_category {
public:
  const char* name() const noexcept override { return "portres.condition"; }
  std::string message(int value) const override {
    switch (static_cast<condition>(value)) {
    case condition::not_supported: return "not supported";
    case condition::access_denied: return "access denied";
    case condition::in_use: return "in use";
    case condition::aborted: return "operation aborted";
    case condition::invalid_argument: return "invalid argument";
    case condition::exhausted: return "ports exhausted";
    }
    return "unknown portres condition " + std::to_string(value);
  }
  bool equivalent(const std::error_code& code, int value) const noexcept override {
    std::optional<condition> c;
    if (code.category() == portres::error_category()) {
      c = condition_of(static_cast<error>(code.value()));
    } else if (code.category() == std::system_category() ||
               code.category() == asio::error::get_system_category()) {
      // On Windows Asio reports OS codes in its own "asio.system" category.
      c = detail::system_condition(code.value());
    } else if (code.category() == std::generic_category()) {
      c = detail::errno_condition(code.value());
    } else {
      // port_in_use_error / block_exhausted_error and any other category
      // that maps itself to one of our conditions.
      return code.category().default_error_condition(code.value()) ==
             std::error_condition(value, *this);
    }
    return c && static_cast<int>(*c) == value;
  }
};

// Detailed errors carry their port (or block) in the value, so the message can name it.
class port_in_use_category final : public std::error_category {
public:
  const char* name() const noexcept override { return "portres.port_in_use"; }
  std::string message(int value) const override {
    return "port " + std::to_string(value) + " is in use (bound by a socket or held by another reservation)";
  }
  std::error_condition default_error_condition(int) const noexcept override {
    return condition::in_use;
  }
};

// A block_exhausted_error's value: the block's first port, then its size.
struct packed_block {
  unsigned first;
  unsigned count;
};
int pack(packed_block b) noexcept { return static_cast<int>(((b.first & 0xffffu) << 16) | (b.count & 0xffffu)); }
packed_block unpack(int value) noexcept {
  const auto packed = static_cast<unsigned>(value);
  return {packed >> 16, packed & 0xffffu};
}

class block_exhausted_category final : public std::error_category {
public:
  const char* name() const noexcept override { return "portres.block_exhausted"; }
  std::string message(int value) const override {
    const auto [first, count] = unpack(value);
    return "no free port left in block " + std::to_string(first) + "-" +
           std::to_string(first + count - 1) + " (" + std::to_string(count) + " ports)";
  }
  std::error_condition default_error_condition(int) const noexcept override {
    return condition::exhausted;
  }
};

const block_exhausted_category& block_exhausted() noexcept {
  static const block_exhausted_category instance;
  return instance;
}

// The peer does not fit in an error code's value: each distinct message is
// kept once (bounded) and the value is its number (from 1: 0 means success).
class destination_exhausted_category final : public std::error_category {
public:
  static constexpr std::size_t capacity = 4096;
  const char* name() const noexcept override { return "portres.destination_exhausted"; }
  std::string message(int value) const override {
    std::lock_guard lock(mutex_);
    if (value >= 1 && static_cast<std::size_t>(value) <= messages_.size()) {
      return messages_[static_cast<std::size_t>(value) - 1];
    }
    return "no port of the block is free towards the peer";
  }
  std::error_condition default_error_condition(int) const noexcept override { return condition::exhausted; }
  int intern(std::string text) const {
    std::lock_guard lock(mutex_);
    if (const auto it = index_.find(text); it != index_.end()) return it->second;
    if (messages_.size() == capacity) return static_cast<int>(capacity) + 1; // the general message
    messages_.push_back(text);
    const auto value = static_cast<int>(messages_.size());
    index_.emplace(std::move(text), value);
    return value;
  }

private:
  mutable std::mutex mutex_;
  mutable std::vector<std::string> messages_;
  mutable std::unordered_map<std::string, int> index_;
};

} // namespace

namespace detail {

std::error_code exhausted_towards(std::error_code ec, std::string_view peer) {
  if (ec.category() != block_exhausted()) return ec;
  const auto [first, count] = unpack(ec.value());
  return destination_exhausted_error(first, count, peer);
}

std::optional<condition> errno_condition(int value) noexcept {
  switch (value) {
  case ENOTSUP:
#if EOPNOTSUPP != ENOTSUP
  case EOPNOTSUPP:
#endif
  case ENOSYS:
  case ENOPROTOOPT:
  case EPROTONOSUPPORT:
  case EAFNOSUPPORT: return condition::not_supported;
  case EACCES:
  case EPERM: return condition::access_denied;
  case EADDRINUSE: return condition::in_use;
  case ECANCELED: return condition::aborted;
  case EINVAL: return condition::invalid_argument;
  case EADDRNOTAVAIL:
  case ENOBUFS: return condition::exhausted;
  default: return std::nullopt;
  }
}

} // namespace detail

const std::error_category& error_category() noexcept {
  static const error_category_impl instance;
  return instance;
}

const std::error_category& condition_category() noexcept {
  static const condition_category_impl instance;
  return instance;
}

std::error_code port_in_use_error(unsigned port) noexcept {
  static const port_in_use_category instance;
  return {static_cast<int>(port & 0xffffu), instance};
}

std::error_code block_exhausted_error(unsigned first, unsigned count) noexcept {
  return {pack({first, count}), block_exhausted()};
}

std::error_code destination_exhausted_error(unsigned first, unsigned count, std::string_view peer) {
  static const destination_exhausted_category instance;
  const auto range = std::to_string(first) + "-" + std::to_string(first + count - 1);
  return {instance.intern("no port of block " + range + " is free towards " + std::string(peer) + " (each of its " +
                          std::to_string(count) + " ports carries a connection towards it, or is held exclusively)"),
          instance};
}

} // namespace portres
