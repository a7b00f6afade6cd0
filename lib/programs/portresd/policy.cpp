#include "portresd/policy.hpp"

#include <gsl/gsl>

#include <algorithm>
#include <charconv>
#include <limits>
#include <sstream>

#include <grp.h>

namespace portres::portresd {
namespace {

std::optional<std::uint32_t> number(const std::string& s) {
  std::uint32_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::optional<std::uint32_t> group_id(const std::string& s) {
  if (auto n = number(s)) return n;
  if (const group* g = ::getgrnam(s.c_str())) return g->gr_gid;
  return std::nullopt;
}

} // namespace

std::uint32_t policy::ports_for(std::uint32_t uid) const {
  if (uid == 0) return std::numeric_limits<std::uint32_t>::max();
  const auto it = max_ports.find(uid);
  return it != max_ports.end() ? it->second : default_max_ports;
}

std::uint32_t policy::blocks_for(std::uint32_t uid) const {
  if (uid == 0) return std::numeric_limits<std::uint32_t>::max();
  const auto it = max_blocks.find(uid);
  return it != max_blocks.end() ? it->second : default_max_blocks;
}

std::uint32_t policy::connections_for(std::uint32_t uid) const {
  if (uid == 0) return std::numeric_limits<std::uint32_t>::max();
  const auto it = max_connections.find(uid);
  return it != max_connections.end() ? it->second : default_max_connections;
}

std::optional<port_range> policy::root_share(port_range placement) const {
  if (root_reserve == 0) return std::nullopt;
  const auto count = std::min(root_reserve, placement.count());
  return port_range(gsl::narrow_cast<std::uint16_t>(placement.last() - count + 1), count);
}

std::optional<port_range> policy::shared_placement(port_range placement) const {
  const auto kept = root_share(placement);
  if (!kept) return placement;
  if (kept->first() == placement.first()) return std::nullopt;
  return port_range(placement.first(), kept->first() - placement.first());
}

std::optional<policy> parse_policy(const std::string& text, std::string& error) {
  policy out;
  std::istringstream lines(text);
  std::string line;
  int number_of_line = 0;
  while (std::getline(lines, line)) {
    ++number_of_line;
    if (const auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    std::istringstream words(line);
    std::string key, a, b, extra;
    if (!(words >> key)) continue;
    words >> a >> b >> extra;
    const auto bad = [&](const std::string& why) {
      error = "policy line " + std::to_string(number_of_line) + ": " + why;
      return std::nullopt;
    };
    if (!extra.empty()) return bad("too many words");
    if (key == "persistent-group") {
      if (a.empty() || !b.empty()) return bad("expected 'persistent-group <gid or name>'");
      const auto gid = group_id(a);
      if (!gid) return bad("unknown group '" + a + "'");
      out.persistent_group = gid;
    } else if (key == "idle-seconds") {
      const auto seconds = number(a);
      if (!seconds || !b.empty() || *seconds < 1 || *seconds > 3600) return bad("expected 'idle-seconds <1-3600>'");
      out.idle_seconds = *seconds;
    } else if (key == "root-reserve") {
      const auto count = number(a);
      if (!count || !b.empty() || *count > 65535) return bad("expected 'root-reserve <count of ports, 0-65535>'");
      out.root_reserve = *count;
    } else if (key == "max-ports" || key == "max-blocks" || key == "max-connections") {
      const auto count = number(b);
      const auto uid = a == "*" ? std::optional<std::uint32_t>(std::nullopt) : number(a);
      if (!count || (a != "*" && !uid)) return bad("expected '" + key + " <uid or *> <count>'");
      auto& table = key == "max-ports" ? out.max_ports : key == "max-blocks" ? out.max_blocks : out.max_connections;
      auto& fallback = key == "max-ports"    ? out.default_max_ports
                       : key == "max-blocks" ? out.default_max_blocks
                                             : out.default_max_connections;
      if (uid) {
        table[*uid] = *count;
      } else {
        fallback = *count;
      }
    } else {
      return bad("unknown setting '" + key + "'");
    }
  }
  return out;
}

} // namespace portres::portresd
