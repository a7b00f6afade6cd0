// The content of a runtime registry file: "v2 tcp 50000 20 1234 4026531840\n"
// (version, protocol, first port, count, owner pid, network namespace inode);
// "v1" records (no namespace) still parse, with namespace 0 (unknown).
#ifndef PORTRES_SRC_LINUX_REGISTRY_FORMAT_HPP
#define PORTRES_SRC_LINUX_REGISTRY_FORMAT_HPP

#include "portres/types.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace portres::detail::linux_registry_format {

struct record {
  protocol proto;
  port_range range;
  std::uint32_t pid;
  std::uint64_t netns = 0; ///< 0: unknown (a v1 record)
};

/// nullopt for anything but one well-formed record with a valid specific block.
std::optional<record> parse(std::string_view text);
std::string format(const record& r);

} // namespace portres::detail::linux_registry_format

#endif
