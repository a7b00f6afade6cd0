// Port probes (platform::unheld_ports) submitted together through one
// io_uring: for each port a socket, IPV6_V6ONLY off, the bind and the close,
// linked, in a single system call. Through plain system calls a free port
// costs four of them; on a kernel with page-table isolation each costs about
// a microsecond more than its work, so a batch of four probes drops from
// ~24 us to ~10 us here.
//
// One ring per process, made on first use and kept (one descriptor,
// close-on-exec); a child made by fork() makes its own. There is none where
// the kernel lacks IORING_OP_BIND (Linux 6.11) or refuses io_uring
// (kernel.io_uring_disabled, seccomp): callers then use plain system calls.
// Any unexpected answer from the ring retires it for good, which also closes
// whatever probe sockets it still had.
#ifndef PORTRES_SRC_LINUX_PROBE_RING_HPP
#define PORTRES_SRC_LINUX_PROBE_RING_HPP

#include "portres/types.hpp"

#include <cstdint>
#include <span>
#include <system_error>

namespace portres::detail::linux_probe {

/// Probes `ports` (at most 32) as platform::unheld_ports does, through the
/// process' ring, with [::] sockets (IPV6_V6ONLY off) when `v6`, else
/// 0.0.0.0; bit i set: nothing holds ports[i]. `used` false: there is no
/// ring (any more), nothing was answered and the caller asks by system calls.
std::uint32_t ring_unheld(protocol p, bool v6, std::span<const std::uint16_t> ports, bool& used,
                          std::error_code& ec);

/// Tests: turns the ring off (plain system calls) or back on.
void set_ring_enabled(bool enabled) noexcept;

} // namespace portres::detail::linux_probe

#endif
