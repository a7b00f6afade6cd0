// Core value types of portres: protocols, port ranges, tokens, reservations.
#ifndef PORTRES_TYPES_HPP
#define PORTRES_TYPES_HPP

#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <system_error>

namespace portres {

/// Transport protocol a reservation applies to.
enum class protocol : std::uint8_t { tcp, udp };

/// "tcp" or "udp".
const char* to_string(protocol p) noexcept;
std::ostream& operator<<(std::ostream& os, protocol p);

/// How ports are picked from a reserved block by portres::bind (portable
/// backends; on native Windows the OS picks).
///  - sequential: ascending from where the last pick stopped;
///  - lru: least recently freed first, so a port in TIME_WAIT is not handed
///    out while a rested one exists;
///  - random: source-port randomisation.
enum class port_policy : std::uint8_t { sequential, lru, random };

const char* to_string(port_policy p) noexcept;

/// A block of ports: first port and count, both in host byte order.
///
/// `first == 0` means a wildcard block: "any free block of `count` ports".
/// Construction never fails; call validate() (every portres operation does)
/// to learn what is wrong with a range built from outside input.
class port_range {
public:
  static constexpr std::uint32_t max_port = 65535;

  constexpr port_range() noexcept = default;
  constexpr port_range(std::uint16_t first, std::uint32_t count) noexcept
      : first_(first), count_(count) {}

  /// Any free block of `count` ports.
  static constexpr port_range wildcard(std::uint32_t count) noexcept { return {0, count}; }

  constexpr std::uint16_t first() const noexcept { return first_; }
  constexpr std::uint32_t count() const noexcept { return count_; }
  constexpr bool is_wildcard() const noexcept { return first_ == 0; }
  /// Last port of a specific block (first + count - 1).
  constexpr std::uint32_t last() const noexcept { return std::uint32_t{first_} + count_ - 1; }
  constexpr bool contains(std::uint32_t port) const noexcept {
    return !is_wildcard() && count_ != 0 && port >= first_ && port <= last();
  }
  constexpr bool overlaps(const port_range& o) const noexcept {
    return !is_wildcard() && !o.is_wildcard() && count_ != 0 && o.count_ != 0 &&
           first_ <= o.last() && o.first_ <= last();
  }

  /// Checks the range: error::zero_count, error::range_past_end, and, when
  /// `allow_wildcard` is false, error::wildcard_not_allowed.
  std::error_code validate(bool allow_wildcard = true) const noexcept;

  friend constexpr bool operator==(const port_range&, const port_range&) noexcept = default;

private:
  std::uint16_t first_ = 0;
  std::uint32_t count_ = 0;
};

/// "50000-50019" for a specific block, "*x20" for a wildcard one.
std::string to_string(const port_range& r);
std::ostream& operator<<(std::ostream& os, const port_range& r);

/// Opaque 64-bit reservation token. Zero is the invalid token (as
/// INVALID_PORT_RESERVATION_TOKEN on Windows).
class reservation_token {
public:
  constexpr reservation_token() noexcept = default;
  constexpr explicit reservation_token(std::uint64_t value) noexcept : value_(value) {}

  constexpr std::uint64_t value() const noexcept { return value_; }
  constexpr explicit operator bool() const noexcept { return value_ != 0; }

  friend constexpr auto operator<=>(const reservation_token&, const reservation_token&) noexcept =
      default;

private:
  std::uint64_t value_ = 0;
};

/// Sixteen hex digits, e.g. "0x00000000000004d2".
std::string to_string(reservation_token t);
std::ostream& operator<<(std::ostream& os, reservation_token t);

/// A granted reservation: the block and its token
/// (INET_PORT_RESERVATION_INSTANCE on Windows).
struct reservation {
  port_range range;
  reservation_token token;
  friend constexpr bool operator==(const reservation&, const reservation&) noexcept = default;
};

std::ostream& operator<<(std::ostream& os, const reservation& r);

} // namespace portres

template <>
struct std::hash<portres::reservation_token> {
  std::size_t operator()(portres::reservation_token t) const noexcept {
    return std::hash<std::uint64_t>{}(t.value());
  }
};

#endif
