// net.ipv4.ip_local_reserved_ports of this network namespace, kept by one
// owner (the per-user registry of root, or the portresd broker): written as
// (entries someone else added) plus (what the owner wants now), and guarded
// so that no reservation starves the namespace's automatic allocation.
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

/// Makes the sysctl (current - owned) | wanted: entries portres did not add
/// (`owned` = what it added before) survive. Returns what portres owns now
/// (wanted minus the foreign entries), nullopt with `ec` when the sysctl
/// cannot be read or written (needs root in this namespace).
/// `current`: the sysctl as the caller just read it (saves a read).
std::optional<port_bitmap> write(const port_bitmap& owned, const port_bitmap& wanted, std::error_code& ec,
                                 const port_bitmap* current = nullptr);

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
