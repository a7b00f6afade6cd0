#include "linux/registry_scan.hpp"

#include "linux/registry_format.hpp"
#include "linux/state_files.hpp"

#include <gsl/gsl>

#include <cerrno>
#include <charconv>
#include <string>

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

namespace portres::detail {

std::vector<live_record> scan_registry(int dir_fd, bool remove_abandoned, std::error_code& ec) {
  ec.clear();
  std::vector<live_record> live;
  const int copy = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR* dir = copy < 0 ? nullptr : ::fdopendir(copy);
  if (dir == nullptr) {
    ec = {errno, std::system_category()};
    if (copy >= 0) ::close(copy);
    return live;
  }
  auto close = gsl::finally([dir] { ::closedir(dir); });
  const auto netns = linux_files::network_namespace_id();
  while (const dirent* d = ::readdir(dir)) {
    const std::string name = d->d_name;
    if (name.rfind("r-", 0) != 0 || name.size() != 2 + 4 + 16) continue;
    std::uint64_t value = 0;
    const char* hex = name.data() + 6;
    if (std::from_chars(hex, hex + 16, value, 16).ec != std::errc{}) continue;
    if (linux_files::is_abandoned_at(dir_fd, name)) {
      if (remove_abandoned) ::unlinkat(dir_fd, name.c_str(), 0);
      continue;
    }
    std::error_code read_ec;
    const auto text = linux_files::read_file_at(dir_fd, name, read_ec);
    if (!text) continue;
    // A live file we cannot parse is skipped, never trusted.
    auto r = linux_registry_format::parse(*text);
    if (!r) continue;
    // Ports belong to a network namespace: a folder shared by two
    // namespaces holds records of both, and each sees only its own.
    if (r->netns != 0 && netns != 0 && r->netns != netns) continue;
    live.push_back({r->proto, r->range, reservation_token{value}, r->pid});
  }
  return live;
}

} // namespace portres::detail
