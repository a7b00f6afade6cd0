// Which ports of a block sockets hold, asked of the kernel through sock_diag
// (NETLINK_INET_DIAG) with the port filter run in the kernel. Unlike
// /proc/net/tcp it also reports TCP sockets that are bound but neither
// listening nor connected (TCP_BOUND_INACTIVE, Linux 6.7+).
#ifndef PORTRES_SRC_LINUX_SOCK_DIAG_HPP
#define PORTRES_SRC_LINUX_SOCK_DIAG_HPP

#include "core/port_bitmap.hpp"
#include "portres/types.hpp"

#include <optional>
#include <system_error>

namespace portres::detail::sock_diag {

/// Local ports in `range` held by any IPv4 or IPv6 socket of protocol `p`
/// in this network namespace, every state included; nullopt with `ec` when
/// sock_diag is unavailable (the caller falls back to /proc/net).
std::optional<port_bitmap> held_ports(protocol p, port_range range, std::error_code& ec);

} // namespace portres::detail::sock_diag

#endif
