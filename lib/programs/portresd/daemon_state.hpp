// What portresd must respect that is not its own, and what it inherits:
// - registry_watch: the live records of root's per-user registry (a process
//   that chose that registry before the daemon started keeps it for life);
// - inherited_listener: a listening socket passed by systemd (LISTEN_FDS).
#ifndef PORTRES_PROGRAMS_PORTRESD_DAEMON_STATE_HPP
#define PORTRES_PROGRAMS_PORTRESD_DAEMON_STATE_HPP

#include "core/port_bitmap.hpp"
#include "linux/state_files.hpp"
#include "portres/types.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <system_error>

namespace portres::portresd {

/// Root's per-user registry folder: PORTRES_RUNTIME_DIR, else /run/portres.
std::string default_registry_dir();

/// Takes the namespace's daemon lock in the namespace folder `folder`: one
/// daemon per network namespace, whatever its socket name.
/// std::errc::device_or_resource_busy when another daemon holds it.
detail::linux_files::unique_fd take_daemon_lock(int folder, std::error_code& ec);

class registry_watch {
public:
  explicit registry_watch(std::string dir) : dir_(std::move(dir)) {}
  /// Ports of `p` held by live records of the registry (none when the folder
  /// is absent or not root's). Looked at every 100 ms at most, rescanned
  /// only when the folder changed.
  const detail::port_bitmap& occupied(protocol p);

private:
  void rescan();
  std::string dir_;
  std::int64_t stamp_ = -1; // the folder's mtime (ns) at the last scan
  std::chrono::steady_clock::time_point looked_{};
  detail::port_bitmap ports_[2];
};

/// The listening socket systemd passed (LISTEN_PID is us, LISTEN_FDS >= 1:
/// descriptor 3), checked to be a listening AF_UNIX SOCK_SEQPACKET socket;
/// -1 when none was passed, -1 with `why` when the passed one is unusable.
int inherited_listener(std::string& why);

} // namespace portres::portresd

#endif
