#include "linux/broker_presence.hpp"

#include "portres/error.hpp"

#include <cerrno>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71 // Linux 5.14
#endif

namespace portres::detail::broker_presence {
namespace {

// Root-owned and writable by root alone: nobody else can plant, replace or
// (for a file) write-lock it.
bool roots_alone(const struct stat& st) { return st.st_uid == 0 && (st.st_mode & (S_IWGRP | S_IWOTH)) == 0; }

// The whole file, for the OFD lock calls.
struct flock whole_file(short type) {
  struct flock l {};
  l.l_type = type;
  l.l_whence = SEEK_SET;
  return l;
}

} // namespace

std::string folder() { return "/run/portresd"; }

std::string name_of(const char* what) {
  return std::string(what) + "." + std::to_string(linux_files::network_namespace_id());
}

linux_files::unique_fd open_folder(bool create, std::error_code& ec) {
  const auto path = folder();
  if (create && ::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    ec = {errno, std::system_category()};
    return {};
  }
  auto dir = linux_files::open_nofollow(path, O_RDONLY | O_DIRECTORY, ec);
  if (!dir) return {};
  struct stat st {};
  if (::fstat(dir.get(), &st) != 0 || !roots_alone(st)) {
    ec = error::unsafe_path;
    return {};
  }
  return dir;
}

std::optional<std::string> root_socket(int fd) {
  std::uint64_t cookie = 0;
  socklen_t len = sizeof cookie;
  if (::getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) != 0) return std::nullopt;
  return folder() + "/root." + std::to_string(cookie);
}

bool daemon_serves() {
  const auto path = folder();
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || !roots_alone(st)) return false;
  const auto file = path + "/" + name_of("alive");
  const int raw = ::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (raw < 0) return false; // no daemon ever ran here
  const linux_files::unique_fd fd(raw);
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || !roots_alone(st)) return false;
  // Would a read lock conflict? Only with a write lock, and only a writer
  // (root: the file is root's, 0644) can hold one: the daemon, while alive.
  auto probe = whole_file(F_RDLCK);
  if (::fcntl(fd.get(), F_OFD_GETLK, &probe) != 0) return false;
  return probe.l_type == F_WRLCK;
}

marker::~marker() {
  if (fd_ && folder_ >= 0) ::unlinkat(folder_, name_of("alive").c_str(), 0);
}

std::error_code marker::publish(int folder) {
  std::error_code ec;
  auto fd = linux_files::create_unnamed_at(folder, O_RDWR, 0644, ec);
  if (!fd) return ec;
  auto lock = whole_file(F_WRLCK);
  if (::fcntl(fd.get(), F_OFD_SETLK, &lock) != 0) return {errno, std::system_category()};
  if ((ec = linux_files::replace_at(fd.get(), folder, name_of("alive"), false))) return ec;
  folder_ = folder;
  fd_ = std::move(fd);
  return {};
}

} // namespace portres::detail::broker_presence
