// net.ipv4.ip_local_reserved_ports of this network namespace: reading it,
// writing it exactly whatever its length, and the arithmetic of the share of
// the ephemeral range that must stay free for automatic allocation. Who may
// change which entries is reserved_ports_owner's business.
#ifndef PORTRES_SRC_LINUX_RESERVED_PORTS_HPP
#define PORTRES_SRC_LINUX_RESERVED_PORTS_HPP

#include "core/port_bitmap.hpp"
#include "linux/state_files.hpp"
#include "portres/types.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <system_error>

namespace portres::detail::reserved_ports {

/// The sysctl's current entries; nullopt with `ec` when unreadable.
std::optional<port_bitmap> read(std::error_code& ec);

/// The same, through a descriptor kept open: one pread per read (portresd
/// reads the list at every grant). One thread at a time.
class reader {
public:
  std::optional<port_bitmap> read(std::error_code& ec);

private:
  linux_files::unique_fd fd_;
  std::string text_;
};

/// Makes the sysctl hold exactly `next` (`current`: what it holds now), then
/// reads it back. The kernel takes at most one page per write() and, at
/// offset 0, replaces the whole list with that page; later pages are written
/// at a non-zero offset, which adds to the list. When nothing is removed only
/// additions are written (at a non-zero offset), so no entry ever drops out,
/// even for a moment. An error when a write fails or the list read back is
/// not `next` (another writer, or a partial write): then the list may differ
/// from both, and `why` says how.
std::error_code write_exact(const port_bitmap& next, const port_bitmap& current, std::string& why);

/// Whether this process may write the sysctl (root in this network
/// namespace); `reason` when not. Asked once per process.
bool writable(std::string& reason);

/// The ports of `blocks` inside `ephemeral`: what the kernel list must hold
/// for an owner (outside that range the kernel never allocates anyway).
port_bitmap to_enforce(const port_bitmap& blocks, port_range ephemeral);

/// The share of the ephemeral range that must stay free for automatic
/// allocation: PORTRES_EPHEMERAL_FREE_SHARE (0..1), default 0.5.
double required_free_share();

/// error::ephemeral_starved when reserving `reserved` (every entry the
/// sysctl would hold) leaves fewer than `share` of `ephemeral` free;
/// `remaining` is how many ephemeral ports would stay free.
std::error_code check_free_share(const port_bitmap& reserved, port_range ephemeral, double share,
                                 std::uint32_t& remaining);

} // namespace portres::detail::reserved_ports

#endif
