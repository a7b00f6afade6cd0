#include "linux/state_files.hpp"

#include "portres/error.hpp"

#include <gsl/gsl>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <utility>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace portres::detail::linux_files {
namespace {
std::error_code last_error() { return {errno, std::system_category()}; }

// Whether `fd` is what `flags` asked for: a folder with O_DIRECTORY, else a
// plain file (a FIFO or device planted under a state name is refused); with
// `ours`, also owned by this user or root.
bool is_expected_kind(int fd, int flags, bool ours) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return false;
  const bool want_dir = (flags & O_DIRECTORY) != 0;
  if (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) return false;
  return !ours || st.st_uid == ::geteuid() || st.st_uid == 0;
}

// All of `fd`, at most 1 MiB: a state file is small; a huge one is hostile.
std::optional<std::string> read_all(int fd, std::error_code& ec) {
  std::string content;
  char buffer[4096];
  while (true) {
    const auto n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ec = last_error();
      return std::nullopt;
    }
    if (n == 0) break;
    content.append(buffer, gsl::narrow_cast<std::size_t>(n));
    if (content.size() > (1u << 20)) {
      ec = error::malformed_state;
      return std::nullopt;
    }
  }
  return content;
}
} // namespace

unique_fd& unique_fd::operator=(unique_fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

unique_fd::~unique_fd() {
  if (fd_ >= 0) ::close(fd_);
}

std::error_code ensure_private_dir(const std::string& path) {
  if (path.empty()) return error::unsafe_path;
  const bool root = ::geteuid() == 0;
  if (::mkdir(path.c_str(), root ? 0755 : 0700) != 0 && errno != EEXIST) return last_error();
  return check_private_dir(path);
}

std::error_code check_private_dir(const std::string& path) {
  if (path.empty()) return error::unsafe_path;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return errno == ENOENT ? std::error_code() : last_error();
  if (!S_ISDIR(st.st_mode)) return error::unsafe_path; // a symlink or a file
  if (st.st_uid != ::geteuid() && st.st_uid != 0) return error::unsafe_path;
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) return error::unsafe_path;
  return {};
}

unique_fd open_nofollow(const std::string& path, int flags, std::error_code& ec) {
  // O_NONBLOCK and the type check: a FIFO under a state name must not hang us.
  const int fd = ::open(path.c_str(), flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0644);
  if (fd < 0) {
    // A symlink (or, asked for a folder, anything but one) is refused as unsafe.
    const bool unsafe = errno == ELOOP || (errno == ENOTDIR && (flags & O_DIRECTORY) != 0);
    ec = unsafe ? std::error_code(error::unsafe_path) : last_error();
    return {};
  }
  unique_fd file(fd);
  if (!is_expected_kind(fd, flags, false)) {
    ec = error::unsafe_path;
    return {};
  }
  ec.clear();
  return file;
}

std::error_code lock_exclusive(int fd, blocking b) {
  const int op = b == blocking::forbidden ? LOCK_EX | LOCK_NB : LOCK_EX;
  while (::flock(fd, op) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) return std::make_error_code(std::errc::operation_would_block);
    return last_error();
  }
  return {};
}

bool is_abandoned(const std::string& path) {
  std::error_code ec;
  auto fd = open_nofollow(path, O_RDONLY, ec);
  if (!fd) return false;
  // flock conflicts between open file descriptions, even within one process,
  // so our own live files are never mistaken for abandoned ones.
  return ::flock(fd.get(), LOCK_EX | LOCK_NB) == 0;
}

std::optional<std::string> read_file(const std::string& path, std::error_code& ec) {
  auto fd = open_nofollow(path, O_RDONLY, ec);
  if (!fd) {
    if (ec == std::errc::no_such_file_or_directory) ec.clear();
    return std::nullopt;
  }
  return read_all(fd.get(), ec);
}

namespace {
std::error_code write_all(int fd, const std::string& content) {
  std::size_t done = 0;
  while (done < content.size()) {
    const auto n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return last_error();
    done += gsl::narrow_cast<std::size_t>(n);
  }
  return {};
}

std::error_code link_unnamed(int fd, int dir, const std::string& name) {
  // linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; the /proc link does not.
  const std::string self = "/proc/self/fd/" + std::to_string(fd);
  if (::linkat(AT_FDCWD, self.c_str(), dir, name.c_str(), AT_SYMLINK_FOLLOW) != 0) return last_error();
  return {};
}

void remove_stale_temporaries(int dir, const std::string& name) {
  const int copy = ::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (copy < 0) return;
  DIR* d = ::fdopendir(copy);
  if (d == nullptr) {
    ::close(copy);
    return;
  }
  auto close = gsl::finally([d] { ::closedir(d); });
  const std::string prefix = name + ".tmp.";
  while (const dirent* e = ::readdir(d)) {
    if (std::string(e->d_name).rfind(prefix, 0) == 0) ::unlinkat(dir, e->d_name, 0);
  }
}
} // namespace

unique_fd create_unnamed_at(int dir, int flags, unsigned mode, std::error_code& ec) {
  const int raw = ::openat(dir, ".", O_TMPFILE | flags | O_CLOEXEC, 0600);
  if (raw < 0) {
    ec = last_error();
    return {};
  }
  unique_fd fd(raw);
  if (mode != 0600 && ::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0) {
    ec = last_error();
    return {};
  }
  ec.clear();
  return fd;
}

std::error_code replace_at(int fd, int dir, const std::string& name, bool durable) {
  remove_stale_temporaries(dir, name);
  if (durable && ::fsync(fd) != 0) return last_error();
  // Named only for the instant before the rename (rename cannot take an
  // unnamed file); a kill in that instant leaves a file the next writer removes.
  const std::string temp = name + ".tmp." + std::to_string(os_random_u64());
  if (auto ec = link_unnamed(fd, dir, temp)) return ec;
  if (::renameat(dir, temp.c_str(), dir, name.c_str()) != 0) {
    const auto ec = last_error();
    ::unlinkat(dir, temp.c_str(), 0);
    return ec;
  }
  if (durable) ::fsync(dir);
  return {};
}

std::error_code write_file_atomic_at(int dir, const std::string& name, const std::string& content, unsigned mode,
                                     bool durable) {
  std::error_code ec;
  auto fd = create_unnamed_at(dir, O_WRONLY, mode, ec);
  if (!fd) return ec;
  if ((ec = write_all(fd.get(), content))) return ec;
  return replace_at(fd.get(), dir, name, durable);
}

unique_fd open_private_dir(const std::string& path, std::error_code& ec) {
  ec.clear();
  if (path.empty()) {
    ec = error::unsafe_path;
    return {};
  }
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    ec = last_error();
    return {};
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    ec = errno == ELOOP || errno == ENOTDIR ? std::error_code(error::unsafe_path) : last_error();
    return {};
  }
  unique_fd dir(fd);
  struct stat st {};
  if (::fstat(dir.get(), &st) != 0 || st.st_uid != ::geteuid()) {
    ec = error::unsafe_path;
    return {};
  }
  // Writable by others: anything in it may have been planted. Refused.
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    ec = error::unsafe_path;
    return {};
  }
  // Nobody else may even open what is inside (flock needs only an open file).
  if ((st.st_mode & 077) != 0 && ::fchmod(dir.get(), 0700) != 0) {
    ec = error::unsafe_path;
    return {};
  }
  return dir;
}

unique_fd open_at(int dir, const std::string& name, int flags, std::error_code& ec) {
  // O_NONBLOCK: a FIFO planted under a state name must not hang the opener.
  const int fd = ::openat(dir, name.c_str(), flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
  if (fd < 0) {
    ec = errno == ELOOP ? std::error_code(error::unsafe_path) : last_error();
    return {};
  }
  unique_fd file(fd);
  if (!is_expected_kind(fd, flags, true)) {
    ec = error::unsafe_path; // not a plain file of ours (or root's)
    return {};
  }
  ec.clear();
  return file;
}

unique_fd create_locked_at(int dir, std::error_code& ec) {
  auto fd = create_unnamed_at(dir, O_RDWR, 0600, ec);
  if (!fd) return {};
  if ((ec = lock_exclusive(fd.get(), blocking::allowed))) return {};
  return fd;
}

std::error_code publish_at(int fd, int dir, const std::string& name) { return link_unnamed(fd, dir, name); }

bool is_abandoned_at(int dir, const std::string& name) {
  std::error_code ec;
  auto fd = open_at(dir, name, O_RDONLY, ec);
  if (!fd) return false;
  return ::flock(fd.get(), LOCK_EX | LOCK_NB) == 0;
}

std::optional<std::string> read_file_at(int dir, const std::string& name, std::error_code& ec) {
  auto fd = open_at(dir, name, O_RDONLY, ec);
  if (!fd) {
    if (ec == std::errc::no_such_file_or_directory) ec.clear();
    return std::nullopt;
  }
  return read_all(fd.get(), ec);
}

std::uint64_t network_namespace_id() {
  struct stat st {};
  if (::stat("/proc/self/ns/net", &st) != 0) return 0;
  return st.st_ino;
}

std::uint64_t os_random_u64() {
  std::uint64_t value = 0;
  while (value == 0) {
    const auto n = ::getrandom(&value, sizeof value, 0);
    if (n != static_cast<ssize_t>(sizeof value)) value = 0; // EINTR or short: draw again
  }
  return value;
}

std::optional<port_bitmap> parse_port_list(const std::string& text) {
  port_bitmap ports;
  const char* p = text.data();
  const char* end = p + text.size();
  while (p != end && (*p == ' ' || *p == '\n' || *p == '\t')) ++p;
  while (end != p && (end[-1] == ' ' || end[-1] == '\n' || end[-1] == '\t')) --end;
  while (p < end) {
    unsigned first = 0, last = 0;
    auto r = std::from_chars(p, end, first);
    if (r.ec != std::errc{}) return std::nullopt;
    p = r.ptr;
    last = first;
    if (p < end && *p == '-') {
      r = std::from_chars(p + 1, end, last);
      if (r.ec != std::errc{}) return std::nullopt;
      p = r.ptr;
    }
    if (first > last || last > 65535) return std::nullopt;
    ports.set_range(first, last);
    if (p < end) {
      if (*p != ',') return std::nullopt;
      ++p;
    }
  }
  return ports;
}

std::vector<std::string> format_port_list_pieces(const port_bitmap& ports, std::size_t max_bytes) {
  std::vector<std::string> out;
  std::string piece;
  ports.for_each_run(0, port_range::max_port, [&](std::uint32_t first, std::uint32_t last) {
    std::string entry = std::to_string(first);
    if (last != first) {
      entry += '-'; // appended piecewise: GCC 12's -Wrestrict misfires on "-" + std::string at -O2
      entry += std::to_string(last);
    }
    if (!piece.empty() && piece.size() + 1 + entry.size() > max_bytes) out.push_back(std::exchange(piece, {}));
    if (!piece.empty()) piece += ',';
    piece += entry;
  });
  if (!piece.empty()) out.push_back(std::move(piece));
  return out;
}

std::string format_port_list(const port_bitmap& ports) {
  auto whole = format_port_list_pieces(ports, std::string::npos);
  return whole.empty() ? std::string() : std::move(whole.front());
}

} // namespace portres::detail::linux_files
