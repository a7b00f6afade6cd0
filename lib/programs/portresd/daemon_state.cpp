#include "portresd/daemon_state.hpp"

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

std::string default_state_dir() {
  if (const char* dir = std::getenv("PORTRES_DAEMON_DIR"); dir && *dir) return dir;
  return default_registry_dir() + "/portresd";
}

std::string default_registry_dir() {
  if (const char* dir = std::getenv("PORTRES_RUNTIME_DIR"); dir && *dir) return dir;
  return "/run/portres";
}

std::error_code owned_ports_file::open(const std::string& dir) {
  // The parent (normally /run/portres) may not exist yet at boot.
  if (const auto slash = dir.rfind('/'); slash != std::string::npos && slash > 0) {
    ::mkdir(dir.substr(0, slash).c_str(), 0755);
  }
  std::error_code ec;
  dir_ = linux_files::open_private_dir(dir, ec);
  if (ec) return ec;
  const auto ns = std::to_string(linux_files::network_namespace_id());
  name_ = "owned." + ns;
  // One daemon per namespace and state folder, whatever socket name it
  // serves: a second one would grant the same blocks and overwrite the record.
  lock_ = linux_files::unique_fd(
      ::openat(dir_.get(), ("lock." + ns).c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600));
  if (!lock_) return {errno, std::system_category()};
  if (::flock(lock_.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return std::make_error_code(std::errc::device_or_resource_busy);
    return {errno, std::system_category()};
  }
  return {};
}

port_bitmap owned_ports_file::load(std::string& problem) {
  problem.clear();
  std::error_code ec;
  const auto text = linux_files::read_file_at(dir_.get(), name_, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) problem = name_ + ": " + ec.message();
  const auto parsed = linux_files::parse_port_list(text.value_or(""));
  if (!parsed && problem.empty()) problem = name_ + ": not a port list";
  saved_ = parsed.value_or(port_bitmap{});
  known_ = true;
  return saved_;
}

std::error_code owned_ports_file::save(const port_bitmap& owned) {
  if (known_ && owned == saved_) return {};
  // One daemon per namespace (it holds the lock file): a fixed temporary
  // name is enough. /run is memory: no fsync (the kernel list does not
  // survive a reboot either).
  const std::string temp = name_ + ".tmp";
  std::error_code ec;
  auto fd = linux_files::open_at(dir_.get(), temp, O_WRONLY | O_CREAT | O_TRUNC, ec);
  if (!fd) return ec;
  const auto text = linux_files::format_port_list(owned) + "\n";
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
      ::renameat(dir_.get(), temp.c_str(), dir_.get(), name_.c_str()) != 0) {
    return {errno, std::system_category()};
  }
  saved_ = owned;
  known_ = true;
  return {};
}

const port_bitmap& registry_watch::occupied(protocol p) {
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
