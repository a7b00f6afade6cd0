// portresd's policy: who may create persistent blocks, how much one non-root
// uid may hold, and the share of the placement range kept for root. Root is
// never capped. The defaults keep any one user from taking everything (see
// docs/security.md, "Default policy"); a file changes them:
//   # comment
//   persistent-group <gid or group name>
//   max-ports <uid or *> <count>
//   max-blocks <uid or *> <count>
//   max-connections <uid or *> <count>
//   root-reserve <count>
//   idle-seconds <seconds>
#ifndef PORTRES_PROGRAMS_PORTRESD_POLICY_HPP
#define PORTRES_PROGRAMS_PORTRESD_POLICY_HPP

#include "portres/types.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace portres::portresd {

struct policy {
  std::optional<std::uint32_t> persistent_group;
  std::uint32_t default_max_ports = 4096;      ///< a quarter of the IANA dynamic range
  std::uint32_t default_max_blocks = 64;       ///< also bounds the kernel list: at most this many entries per uid
  std::uint32_t default_max_connections = 128; ///< a grant is a connection: blocks plus room for calls
  std::uint32_t root_reserve = 4096;           ///< the top of the placement range: root's alone
  std::uint32_t idle_seconds = 10;             ///< a connection holding nothing is closed this long after it opened
  std::map<std::uint32_t, std::uint32_t> max_ports;
  std::map<std::uint32_t, std::uint32_t> max_blocks;
  std::map<std::uint32_t, std::uint32_t> max_connections;

  std::uint32_t ports_for(std::uint32_t uid) const;
  std::uint32_t blocks_for(std::uint32_t uid) const;
  std::uint32_t connections_for(std::uint32_t uid) const;
  /// The part of `placement` kept for root (its top root_reserve ports),
  /// nullopt when none is kept.
  std::optional<port_range> root_share(port_range placement) const;
  /// Where non-root wildcard blocks go: `placement` below root's share
  /// (nullopt when root's share is all of it).
  std::optional<port_range> shared_placement(port_range placement) const;
};

/// Parses policy text; nullopt with `error` naming the bad line.
std::optional<policy> parse_policy(const std::string& text, std::string& error);

} // namespace portres::portresd

#endif
