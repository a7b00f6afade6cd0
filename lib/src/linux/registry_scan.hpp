// Reading the live records of a per-user registry folder: shared by the
// registry itself and by portresd, which must not grant what such a
// registry already granted (a process keeps the mode it started in).
#ifndef PORTRES_SRC_LINUX_REGISTRY_SCAN_HPP
#define PORTRES_SRC_LINUX_REGISTRY_SCAN_HPP

#include "portres/types.hpp"

#include <cstdint>
#include <system_error>
#include <vector>

namespace portres::detail {

struct live_record {
  protocol proto;
  port_range range;
  reservation_token token;
  std::uint32_t pid;
};

/// The live records (held by a living process) of this network namespace in
/// the registry folder `dir_fd`; with `remove_abandoned` (only under the
/// registry lock) the records of dead holders are removed on the way.
std::vector<live_record> scan_registry(int dir_fd, bool remove_abandoned, std::error_code& ec);

} // namespace portres::detail

#endif
