// Who holds what: live reservations of the machine and the sockets on a
// block's ports (for tools such as the portres command-line program).
#ifndef PORTRES_USAGE_HPP
#define PORTRES_USAGE_HPP

#include "portres/types.hpp"

#include <cstdint>
#include <string>
#include <system_error>
#include <vector>

namespace portres {

/// A live runtime reservation and the process that holds it.
struct runtime_entry {
  protocol proto;
  port_range range;
  std::uint32_t owner_pid;
  std::uint32_t owner_uid = 0;  ///< Linux broker mode; 0 where unknown
  reservation_token token{};    ///< set only where the caller may see it (its own, broker mode)
};

/// Every live runtime reservation of the machine (Linux: from the registry).
/// Windows has no such listing: error::os_unsupported.
std::vector<runtime_entry> list_runtime(std::error_code& ec);

/// A socket on a port of interest.
struct port_user {
  std::uint16_t port;
  std::string state;     ///< e.g. "LISTEN", "ESTABLISHED", "TIME_WAIT", "BOUND" (UDP)
  std::uint32_t pid;     ///< 0 when unknown (e.g. TIME_WAIT has no owner)
};

/// The sockets whose local port lies in `range` (TIME_WAIT included).
std::vector<port_user> port_usage(protocol p, port_range range, std::error_code& ec);

} // namespace portres

#endif
