// Which local ports of a range the kernel's sockets hold, asked through
// sock_diag (NETLINK_SOCK_DIAG) with the port range filtered in the kernel.
// Unlike /proc/net/tcp it also reports TCP sockets that are bound but neither
// listening nor connected (bound-inactive, kernels 6.8 and later).
#ifndef PORTRES_SRC_LINUX_SOCK_DIAG_HPP
#define PORTRES_SRC_LINUX_SOCK_DIAG_HPP

#include "core/port_bitmap.hpp"
#include "portres/types.hpp"

#include <system_error>

namespace portres::detail::sock_diag {

/// Marks in `held` every port of `range` that a socket of `p` (IPv4 and IPv6,
/// every state) has as its local port. An error (no sock_diag in this kernel)
/// leaves `held` partly filled: the caller falls back to /proc.
std::error_code mark_held(protocol p, port_range range, port_bitmap& held);

} // namespace portres::detail::sock_diag

#endif
