#include "core/block_placement.hpp"

#include <gsl/gsl>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <chrono>
#include <mutex>
#include <cstring>

namespace portres::detail {

std::vector<port_range> wildcard_regions(port_range placement, port_range ephemeral) {
  std::vector<port_range> regions;
  const auto lo = std::uint32_t{placement.first()};
  const auto hi = placement.last();
  // Parts of the placement range below and above the ephemeral range.
  if (ephemeral.first() > lo) {
    const auto end = std::min<std::uint32_t>(hi, ephemeral.first() - 1u);
    regions.emplace_back(gsl::narrow_cast<std::uint16_t>(lo), end - lo + 1);
  }
  if (ephemeral.last() < hi) {
    const auto start = std::max<std::uint32_t>(lo, ephemeral.last() + 1u);
    regions.emplace_back(gsl::narrow_cast<std::uint16_t>(start), hi - start + 1);
  }
  regions.push_back(placement);
  return regions;
}

std::optional<port_range> find_free_block(std::uint32_t count, port_range region,
                                          const std::vector<port_range>& occupied,
                                          const port_bitmap& held) {
  if (count == 0 || count > region.count()) return std::nullopt;
  port_bitmap blocked = held;
  for (const auto& o : occupied) blocked.set_range(o.first(), o.last());
  const auto first = blocked.find_clear_run(count, region.first(), region.last());
  if (!first) return std::nullopt;
  return port_range(gsl::narrow_cast<std::uint16_t>(*first), count);
}

std::error_code check_specific_block(port_range block, const std::vector<port_range>& occupied,
                                     const port_bitmap& held) {
  for (const auto& o : occupied) {
    if (o.overlaps(block)) return error::overlaps_reservation;
  }
  if (const auto port = held.next_set(block.first(), block.last())) return port_in_use_error(*port);
  return {};
}

port_range place_block(port_range request, port_range placement, port_range ephemeral,
                       const std::vector<port_range>& occupied, const port_bitmap& held,
                       std::error_code& ec) {
  ec.clear();
  if (!request.is_wildcard()) {
    ec = check_specific_block(request, occupied, held);
    return ec ? port_range{} : request;
  }
  for (const auto& region : wildcard_regions(placement, ephemeral)) {
    if (auto block = find_free_block(request.count(), region, occupied, held)) return *block;
  }
  ec = error::block_unavailable;
  return {};
}

port_bitmap recent_held_ports(protocol p, std::error_code& ec) {
  struct snapshot {
    std::chrono::steady_clock::time_point taken;
    port_bitmap held;
    bool valid = false;
  };
  static std::mutex mutex;
  static snapshot snapshots[2];
  constexpr auto max_age = std::chrono::milliseconds(250);
  auto& snap = snapshots[p == protocol::tcp ? 0 : 1];
  std::lock_guard lock(mutex);
  const auto now = std::chrono::steady_clock::now();
  if (!snap.valid || now - snap.taken > max_age) {
    snap.held = platform::held_ports(p, port_range(1, port_range::max_port), ec);
    if (ec) return {};
    snap.taken = now;
    snap.valid = true;
  }
  ec.clear();
  return snap.held;
}

port_bitmap held_ports_for(protocol p, port_range request, std::error_code& ec) {
  return request.is_wildcard() ? recent_held_ports(p, ec) : platform::held_ports(p, request, ec);
}

port_range default_placement() {
  return parse_port_span(std::getenv("PORTRES_PLACEMENT")).value_or(iana_dynamic);
}

std::optional<port_range> parse_port_span(const char* text) {
  if (text == nullptr) return std::nullopt;
  const char* end = text + std::strlen(text);
  unsigned first = 0, last = 0;
  auto [p, e] = std::from_chars(text, end, first);
  if (e != std::errc{} || p == end || *p != '-') return std::nullopt;
  auto [q, e2] = std::from_chars(p + 1, end, last);
  if (e2 != std::errc{} || q != end || first == 0 || first > last || last > port_range::max_port) {
    return std::nullopt;
  }
  return port_range(gsl::narrow_cast<std::uint16_t>(first), last - first + 1);
}

} // namespace portres::detail
