// Parsing one row of /proc/net/{tcp,tcp6,udp,udp6}.
#ifndef PORTRES_SRC_LINUX_PROC_NET_HPP
#define PORTRES_SRC_LINUX_PROC_NET_HPP

#include <cstdint>
#include <optional>
#include <string_view>

namespace portres::detail::linux_proc {

struct socket_row {
  std::uint16_t local_port;
  unsigned state; ///< TCP state number (1 ESTABLISHED ... 6 TIME_WAIT ... 10 LISTEN)
  unsigned long inode;
};

/// "  sl  local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ..."
/// nullopt for the header or a malformed row.
std::optional<socket_row> parse_row(std::string_view line);

} // namespace portres::detail::linux_proc

#endif
