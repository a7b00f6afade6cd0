// What portresd keeps outside its memory, and what it must respect that is
// not its own:
// - owned_ports_file: the ip_local_reserved_ports entries this namespace's
//   daemon added, in a root-only folder, so that a daemon restarted after a
//   crash removes its predecessor's entries instead of leaking them (or
//   taking them for someone else's);
// - registry_watch: the live records of root's per-user registry (a process
//   that chose that registry before the daemon started keeps it for life);
// - inherited_listener: a listening socket passed by systemd (LISTEN_FDS).
#ifndef PORTRES_PROGRAMS_PORTRESD_DAEMON_STATE_HPP
#define PORTRES_PROGRAMS_PORTRESD_DAEMON_STATE_HPP

#include "core/port_bitmap.hpp"
#include "linux/state_files.hpp"
#include "portres/types.hpp"

#include <cstdint>
#include <string>
#include <system_error>

namespace portres::portresd {

/// PORTRES_DAEMON_DIR, else portresd/ in the registry folder (/run/portres/portresd).
std::string default_state_dir();
/// Root's per-user registry folder: PORTRES_RUNTIME_DIR, else /run/portres.
std::string default_registry_dir();

class owned_ports_file {
public:
  /// Opens (creating, 0700, root-owned) the folder; the file is per network
  /// namespace. Holds the namespace's lock file there: a second daemon of the
  /// same namespace gets std::errc::device_or_resource_busy.
  std::error_code open(const std::string& dir);
  /// What the last daemon of this namespace said it owned (empty if nothing);
  /// `problem` names an unreadable or damaged record (then: empty).
  detail::port_bitmap load(std::string& problem);
  /// Replaces the record atomically (written to a temporary name, renamed);
  /// nothing is written when `owned` is what the file already says.
  std::error_code save(const detail::port_bitmap& owned);

private:
  detail::linux_files::unique_fd dir_;
  detail::linux_files::unique_fd lock_;
  std::string name_;
  detail::port_bitmap saved_;
  bool known_ = false;
};

class registry_watch {
public:
  explicit registry_watch(std::string dir) : dir_(std::move(dir)) {}
  /// Ports of `p` held by live records of the registry (none when the folder
  /// is absent or not root's). Rescanned only when the folder changed.
  const detail::port_bitmap& occupied(protocol p);

private:
  void rescan();
  std::string dir_;
  std::int64_t stamp_ = -1; // the folder's mtime (ns) at the last scan
  detail::port_bitmap ports_[2];
};

/// The listening socket systemd passed (LISTEN_PID is us, LISTEN_FDS >= 1:
/// descriptor 3), checked to be a listening AF_UNIX SOCK_SEQPACKET socket;
/// -1 when none was passed, -1 with `why` when the passed one is unusable.
int inherited_listener(std::string& why);

} // namespace portres::portresd

#endif
