#include "portresd/daemon_state.hpp"

#include "linux/broker_presence.hpp"
#include "linux/registry_scan.hpp"

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

namespace portres::portresd {

using namespace portres::detail;

std::string default_registry_dir() {
  if (const char* dir = std::getenv("PORTRES_RUNTIME_DIR"); dir && *dir) return dir;
  return "/run/portres";
}

linux_files::unique_fd take_daemon_lock(int folder, std::error_code& ec) {
  // 0600 in a root-only-writable folder: no one else can open it, so no one
  // else can hold the lock.
  auto lock = linux_files::open_at(folder, broker_presence::name_of("lock"), O_RDWR | O_CREAT, ec);
  if (!lock) return {};
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    ec = errno == EWOULDBLOCK ? std::make_error_code(std::errc::device_or_resource_busy)
                              : std::error_code(errno, std::system_category());
    return {};
  }
  return lock;
}

const port_bitmap& registry_watch::occupied(protocol p) {
  // Looked at every 100 ms at most: once the daemon serves, a registry
  // process adds no record (it sees the daemon's presence and grants
  // nothing); what changes is records going away.
  const auto now_steady = std::chrono::steady_clock::now();
  if (now_steady - looked_ < std::chrono::milliseconds(100)) return ports_[p == protocol::tcp ? 0 : 1];
  looked_ = now_steady;
  struct stat st {};
  std::int64_t stamp = -1;
  if (::lstat(dir_.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == 0) {
    stamp = std::int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
  }
  // A folder changed within the last few clock ticks may change again with
  // the same mtime: scan until its mtime is safely in the past.
  const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  if (stamp != stamp_ || now - stamp < 50'000'000) {
    stamp_ = stamp;
    if (stamp < 0) {
      ports_[0] = ports_[1] = port_bitmap{};
    } else {
      rescan();
    }
  }
  return ports_[p == protocol::tcp ? 0 : 1];
}

void registry_watch::rescan() {
  ports_[0] = ports_[1] = port_bitmap{};
  const int fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return;
  linux_files::unique_fd dir(fd);
  struct stat st {};
  // Only root's own registry counts: a folder another user could write
  // might hold planted records.
  if (::fstat(dir.get(), &st) != 0 || st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) return;
  std::error_code ec;
  // Records of dead holders stay where they are (the registry removes them
  // under its lock); they are skipped here.
  for (const auto& r : scan_registry(dir.get(), false, ec)) {
    ports_[r.proto == protocol::tcp ? 0 : 1].set_range(r.range.first(), r.range.last());
  }
}

int inherited_listener(std::string& why) {
  const char* pid = std::getenv("LISTEN_PID");
  const char* fds = std::getenv("LISTEN_FDS");
  if (pid == nullptr || fds == nullptr || std::atol(pid) != ::getpid()) return -1;
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
  if (std::atoi(fds) < 1) return -1;
  constexpr int fd = 3; // SD_LISTEN_FDS_START
  int type = 0, listening = 0, family = 0;
  socklen_t len = sizeof type;
  socklen_t len2 = sizeof listening;
  socklen_t len3 = sizeof family;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
      ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len2) != 0 ||
      ::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len3) != 0 || family != AF_UNIX ||
      type != SOCK_SEQPACKET || listening == 0) {
    why = "descriptor 3 from LISTEN_FDS is not a listening AF_UNIX SOCK_SEQPACKET socket "
          "(portresd.socket needs ListenSequentialPacket=@portresd)";
    return -2;
  }
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

} // namespace portres::portresd
