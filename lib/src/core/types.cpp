#include "portres/types.hpp"

#include "portres/error.hpp"

#include <cinttypes>
#include <cstdio>
#include <ostream>

namespace portres {

const char* to_string(protocol p) noexcept { return p == protocol::tcp ? "tcp" : "udp"; }

std::ostream& operator<<(std::ostream& os, protocol p) { return os << to_string(p); }

const char* to_string(port_policy p) noexcept {
  switch (p) {
  case port_policy::sequential: return "sequential";
  case port_policy::lru: return "lru";
  case port_policy::random: return "random";
  }
  return "unknown";
}

std::error_code port_range::validate(bool allow_wildcard) const noexcept {
  if (count_ == 0) return error::zero_count;
  if (is_wildcard()) {
    if (!allow_wildcard) return error::wildcard_not_allowed;
    // A wildcard block still has to fit between port 1 and 65535.
    if (count_ > max_port) return error::range_past_end;
    return {};
  }
  if (last() > max_port) return error::range_past_end;
  return {};
}

std::string to_string(const port_range& r) {
  if (r.is_wildcard()) return "*x" + std::to_string(r.count());
  if (r.count() == 0) return std::to_string(r.first()) + "-(empty)";
  return std::to_string(r.first()) + "-" + std::to_string(r.last());
}

std::ostream& operator<<(std::ostream& os, const port_range& r) { return os << to_string(r); }

std::string to_string(reservation_token t) {
  char text[2 + 16 + 1];
  std::snprintf(text, sizeof text, "0x%016" PRIx64, t.value());
  return text;
}

std::ostream& operator<<(std::ostream& os, reservation_token t) { return os << to_string(t); }

std::ostream& operator<<(std::ostream& os, const reservation& r) {
  return os << r.range << " token " << r.token;
}

} // namespace portres
