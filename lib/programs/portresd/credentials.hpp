// Who a client is, from the kernel only (never from anything it says): the
// credentials of its connection (SO_PEERCRED at connect), its supplementary
// groups at connect (SO_PEERGROUPS: a process that dropped a group is not in
// it, whatever /etc/group says) and, for privileged ports, whether it may
// bind them (CAP_NET_BIND_SERVICE in the daemon's user namespace).
#ifndef PORTRES_PROGRAMS_PORTRESD_CREDENTIALS_HPP
#define PORTRES_PROGRAMS_PORTRESD_CREDENTIALS_HPP

#include <cstdint>
#include <optional>

#include <sys/socket.h>

namespace portres::portresd {

/// SO_PEERCRED of connection `fd`.
std::optional<ucred> peer_of(int fd);

/// Whether the peer of `fd` (credentials `peer`) has `gid` as its group or
/// among its supplementary groups, as they were when it connected.
bool peer_in_group(int fd, const ucred& peer, std::uint32_t gid);

/// Whether the peer of `fd` may bind ports below the namespace's
/// ip_unprivileged_port_start: uid 0, or CAP_NET_BIND_SERVICE effective in
/// our user namespace (read from /proc while a pidfd of the peer shows it is
/// still the same process).
bool peer_may_bind_privileged(int fd, const ucred& peer);

/// net.ipv4.ip_unprivileged_port_start (1024 when unreadable).
std::uint32_t unprivileged_port_start();

} // namespace portres::portresd

#endif
