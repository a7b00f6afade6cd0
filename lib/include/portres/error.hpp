// Errors of portres and the portable conditions OS codes compare equal to.
#ifndef PORTRES_ERROR_HPP
#define PORTRES_ERROR_HPP

#include <string_view>
#include <system_error>

namespace portres {

/// Failures detected by portres itself (category "portres").
enum class error {
  // 0 is success and never used.
  zero_count = 1,          ///< a port range with a count of zero
  range_past_end,          ///< a port range running past port 65535
  wildcard_not_allowed,    ///< a wildcard range where only a specific block is allowed
  invalid_token,           ///< the zero token
  unknown_token,           ///< no live reservation has this token
  foreign_token,           ///< the token belongs to another process
  already_released,        ///< the reservation was released before
  already_associated,      ///< the socket is associated with a reservation already
  already_bound,           ///< association after bind
  not_associated,          ///< bind from a reservation without association
  socket_not_open,         ///< the socket is closed
  unsupported_socket,      ///< not a TCP or UDP socket of the reservation's protocol
  block_exhausted,         ///< no free port left in the block
  block_unavailable,       ///< no free block of the requested size
  port_in_use,             ///< a port of a specific block is in use
  overlaps_reservation,    ///< the block overlaps another reservation
  backend_unavailable,     ///< the selected backend does not run on this machine
  privilege_required,      ///< the operation needs root / administrator rights
  malformed_state,         ///< a registry or store file could not be parsed
  unsafe_path,             ///< a state path is a symlink or writable by others
  pool_closed,             ///< the socket pool was closed
  too_many_waiters,        ///< a pool's waiter limit was exceeded
  bad_response,            ///< the OS returned a malformed result
  os_unsupported,          ///< the OS lacks the function (e.g. Wine: no persistent reservations)
  ephemeral_starved,       ///< Linux: the block would leave too little of the ephemeral range free
  reservation_released,    ///< a pool's reservation was released: it has no ports left to give
  // Broker, policy and kernel-list states: portres::linux_error (<portres/linux_error.hpp>).
};

/// Portable meanings that OS codes of either platform compare equal to.
enum class condition {
  not_supported = 1,
  access_denied,
  in_use,
  aborted,
  invalid_argument,
  exhausted,
};

const std::error_category& error_category() noexcept;
const std::error_category& condition_category() noexcept;

/// An in_use error whose message names the conflicting port
/// ("port 50003 is in use"); compares equal to condition::in_use.
std::error_code port_in_use_error(unsigned port) noexcept;
/// An exhausted error whose message names the block
/// ("no free port left in block 50000-50019"); compares equal to condition::exhausted.
std::error_code block_exhausted_error(unsigned first, unsigned count) noexcept;
/// An exhausted error naming the block and the peer none of its ports is
/// free towards ("no port of block 50000-50199 is free towards
/// 127.0.0.1:9001 ..."); compares equal to condition::exhausted.
std::error_code destination_exhausted_error(unsigned first, unsigned count, std::string_view peer);

inline std::error_code make_error_code(error e) noexcept {
  return {static_cast<int>(e), error_category()};
}
inline std::error_condition make_error_condition(condition c) noexcept {
  return {static_cast<int>(c), condition_category()};
}

} // namespace portres

template <>
struct std::is_error_code_enum<portres::error> : std::true_type {};
template <>
struct std::is_error_condition_enum<portres::condition> : std::true_type {};

#endif
