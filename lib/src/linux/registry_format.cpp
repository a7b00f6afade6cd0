#include "linux/registry_format.hpp"

#include <gsl/gsl>

#include <sstream>

namespace portres::detail::linux_registry_format {

std::optional<record> parse(std::string_view text) {
  if (text.size() > 128) return std::nullopt; // a record is one short line
  std::istringstream in{std::string(text)};
  std::string version, proto, extra;
  long long first = 0, count = 0, pid = 0;
  unsigned long long netns = 0;
  if (!(in >> version >> proto >> first >> count >> pid) || (version != "v1" && version != "v2") ||
      (version == "v2" && !(in >> netns)) || (in >> extra) ||
      (proto != "tcp" && proto != "udp") || first < 1 || first > port_range::max_port || count < 1 ||
      count > port_range::max_port || pid < 0 || pid > 0x7fffffff) {
    return std::nullopt;
  }
  const port_range range(gsl::narrow_cast<std::uint16_t>(first), gsl::narrow_cast<std::uint32_t>(count));
  if (range.validate(false)) return std::nullopt;
  return record{proto == "tcp" ? protocol::tcp : protocol::udp, range, gsl::narrow_cast<std::uint32_t>(pid),
                std::uint64_t{netns}};
}

std::string format(const record& r) {
  return "v2 " + std::string(to_string(r.proto)) + " " + std::to_string(r.range.first()) + " " +
         std::to_string(r.range.count()) + " " + std::to_string(r.pid) + " " + std::to_string(r.netns) + "\n";
}

} // namespace portres::detail::linux_registry_format
