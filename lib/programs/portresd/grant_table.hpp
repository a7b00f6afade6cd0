// portresd's live runtime grants: who holds which block, what each uid holds
// (for its quotas), bitmaps of the granted ports (so the cost of a grant does
// not grow with the number of live ones), an index in port order for
// listings a page at a time, and where a new block may go.
#ifndef PORTRES_PROGRAMS_PORTRESD_GRANT_TABLE_HPP
#define PORTRES_PROGRAMS_PORTRESD_GRANT_TABLE_HPP

#include "core/port_bitmap.hpp"
#include "linux/broker_protocol.hpp"
#include "portres/types.hpp"

#include <cstdint>
#include <map>
#include <system_error>
#include <unordered_map>
#include <vector>

namespace portres::portresd {

struct grant {
  protocol proto = protocol::tcp;
  port_range range;
  std::uint64_t token = 0;
  std::uint32_t uid = 0;
  std::uint32_t pid = 0;
};

class grant_table {
public:
  bool holds_token(std::uint64_t token) const { return by_token_.count(token) != 0; }
  /// Changes at every add and remove (for caches of what depends on it).
  std::uint64_t version() const { return version_; }
  void add(const grant& g);
  /// Removes the grant with `token`; returns it (its range is empty if none).
  grant remove(std::uint64_t token);

  const detail::port_bitmap& ports(protocol p) const { return ports_[index(p)]; }
  /// Both protocols' granted ports (the kernel list is shared by both).
  detail::port_bitmap all_ports() const;
  std::vector<port_range> ranges(protocol p) const;

  std::uint32_t ports_of(std::uint32_t uid) const;
  std::uint32_t blocks_of(std::uint32_t uid) const;

  /// Up to `n` grants from `cursor` on, in (protocol, first port) order;
  /// `next` is the cursor of the page after (0 when this is the last).
  std::vector<const grant*> page(std::uint64_t cursor, std::size_t n, std::uint64_t& next) const;

private:
  static std::size_t index(protocol p) { return p == protocol::tcp ? 0 : 1; }
  // Blocks of one protocol are disjoint: (protocol, first port) names one.
  static std::uint64_t position(protocol p, std::uint16_t first) { return (std::uint64_t{index(p)} << 16) | first; }
  struct held {
    std::uint32_t ports = 0;
    std::uint32_t blocks = 0;
  };

  std::map<std::uint64_t, grant> by_position_;
  std::unordered_map<std::uint64_t, std::uint64_t> by_token_; // token -> position
  std::unordered_map<std::uint32_t, held> by_uid_;
  detail::port_bitmap ports_[2];
  std::uint64_t version_ = 0;
};

/// Places `request` (wildcard in `placement`, or specific) against
/// `reserved` (ports nobody may be granted: live, persistent, foreign kernel
/// entries...) and `held` (ports sockets hold): the block, or the error the
/// per-user registry would give (one placement rule, core/block_placement).
port_range place(port_range request, const detail::port_bitmap& reserved, const detail::port_bitmap& held,
                 port_range placement, port_range ephemeral, std::error_code& ec);

} // namespace portres::portresd

#endif
