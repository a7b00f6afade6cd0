#include "portresd/grant_table.hpp"

#include "core/block_placement.hpp"
#include "portres/error.hpp"

#include <gsl/gsl>

namespace portres::portresd {

using detail::port_bitmap;

void grant_table::add(const grant& g) {
  const auto at = position(g.proto, g.range.first());
  by_position_.emplace(at, g);
  by_token_.emplace(g.token, at);
  auto& h = by_uid_[g.uid];
  h.ports += g.range.count();
  ++h.blocks;
  ports_[index(g.proto)].set_range(g.range.first(), g.range.last());
  ++version_;
}

grant grant_table::remove(std::uint64_t token) {
  const auto t = by_token_.find(token);
  if (t == by_token_.end()) return {};
  const auto g = by_position_.extract(t->second).mapped();
  by_token_.erase(t);
  auto h = by_uid_.find(g.uid);
  h->second.ports -= g.range.count();
  if (--h->second.blocks == 0) by_uid_.erase(h);
  port_bitmap block;
  block.set_range(g.range.first(), g.range.last());
  ports_[index(g.proto)].remove(block);
  ++version_;
  return g;
}

port_bitmap grant_table::all_ports() const {
  port_bitmap all = ports_[0];
  all |= ports_[1];
  return all;
}

std::vector<port_range> grant_table::ranges(protocol p) const {
  std::vector<port_range> out;
  for (const auto& [at, g] : by_position_) {
    if (g.proto == p) out.push_back(g.range);
  }
  return out;
}

std::uint32_t grant_table::ports_of(std::uint32_t uid) const {
  const auto h = by_uid_.find(uid);
  return h == by_uid_.end() ? 0 : h->second.ports;
}

std::uint32_t grant_table::blocks_of(std::uint32_t uid) const {
  const auto h = by_uid_.find(uid);
  return h == by_uid_.end() ? 0 : h->second.blocks;
}

std::vector<const grant*> grant_table::page(std::uint64_t cursor, std::size_t n, std::uint64_t& next) const {
  std::vector<const grant*> out;
  next = 0;
  for (auto it = by_position_.lower_bound(cursor); it != by_position_.end(); ++it) {
    if (out.size() == n) {
      next = it->first;
      break;
    }
    out.push_back(&it->second);
  }
  return out;
}

port_range place(port_range request, const port_bitmap& reserved, const port_bitmap& held, port_range placement,
                 port_range ephemeral, std::error_code& ec) {
  if (!request.is_wildcard() && reserved.next_set(request.first(), request.last())) {
    ec = error::overlaps_reservation;
    return {};
  }
  port_bitmap blocked = held;
  blocked |= reserved;
  return detail::place_block(request, placement, ephemeral, {}, blocked, ec);
}

} // namespace portres::portresd
