// portresd's policy file: who may create persistent blocks and how many
// ports and connections a uid may hold. Root is never capped.
//   # comment
//   persistent-group <gid or group name>
//   max-ports <uid or *> <count>
//   max-connections <uid or *> <count>
#ifndef PORTRES_PROGRAMS_PORTRESD_POLICY_HPP
#define PORTRES_PROGRAMS_PORTRESD_POLICY_HPP

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace portres::portresd {

struct policy {
  std::optional<std::uint32_t> persistent_group;
  std::uint32_t default_max_ports = 16384;
  std::uint32_t default_max_connections = 4096;
  std::map<std::uint32_t, std::uint32_t> max_ports;
  std::map<std::uint32_t, std::uint32_t> max_connections;

  std::uint32_t ports_for(std::uint32_t uid) const;
  std::uint32_t connections_for(std::uint32_t uid) const;
};

/// Parses policy text; nullopt with `error` naming the bad line.
std::optional<policy> parse_policy(const std::string& text, std::string& error);

} // namespace portres::portresd

#endif
