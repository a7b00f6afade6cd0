// The namespace folder: where portresd and every root writer of
// ip_local_reserved_ports meet, one set of files per network namespace
// (/run/portresd, root-owned, 0755; fixed, so that no option or variable can
// give two daemons, or a daemon and a registry, different meeting places):
//   lock.<netns>         portresd's lock: one daemon per namespace, whatever
//                        its socket name (0600: no one else can hold it)
//   alive.<netns>        portresd's presence: write-locked while it serves
//                        (0644: anyone can test it, only root can hold it)
//   kernel-lock.<netns>  the writers' lock around each read-modify-write of
//                        the kernel list (0600)
//   kernel-owned.<netns> the daemon's record of the entries it added
//   root.<netns cookie>  portresd's second listening socket, for root only
//                        (a socket file of mode 0600): root's connections
//                        never queue behind other users' in the backlog of
//                        the abstract name, which anyone may flood or squat
// A per-user-registry process asks the presence file, not the daemon's
// socket, whether a daemon serves: a bounded test that never talks to (or
// waits on) another user's process.
#ifndef PORTRES_SRC_LINUX_BROKER_PRESENCE_HPP
#define PORTRES_SRC_LINUX_BROKER_PRESENCE_HPP

#include "linux/state_files.hpp"

#include <optional>
#include <string>
#include <system_error>

namespace portres::detail::broker_presence {

/// /run/portresd.
std::string folder();

/// `<what>.<network namespace inode>`, the per-namespace file names above.
std::string name_of(const char* what);

/// Opens the folder (created 0755 when `create`): a directory owned by root,
/// not writable by group or others, never through a symlink;
/// error::unsafe_path otherwise.
linux_files::unique_fd open_folder(bool create, std::error_code& ec);

/// The path of the daemon's socket for root in the network namespace of
/// socket `fd` (named by its SO_NETNS_COOKIE, which costs a client one
/// getsockopt where the namespace's inode costs a stat of /proc); nullopt
/// when the kernel cannot say (before 5.14).
std::optional<std::string> root_socket(int fd);

/// Whether a portresd serves this network namespace now: its presence file
/// is write-locked. Costs a stat and an open (and one fcntl when the file
/// exists); never waits.
bool daemon_serves();

/// portresd's presence, held for its life.
class marker {
public:
  marker() = default;
  marker(const marker&) = delete;
  marker& operator=(const marker&) = delete;
  ~marker();
  /// Publishes a fresh presence file in `folder` (a new inode, already
  /// write-locked before it is named, so no lock another process took on an
  /// old file can stand in the way). The caller holds the daemon lock.
  std::error_code publish(int folder);

private:
  int folder_ = -1;
  linux_files::unique_fd fd_;
};

} // namespace portres::detail::broker_presence

#endif
