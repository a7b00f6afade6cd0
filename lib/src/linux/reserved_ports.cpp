#include "linux/reserved_ports.hpp"

#include "linux/state_files.hpp"
#include "portres/error.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace portres::detail::reserved_ports {
namespace {
constexpr const char* sysctl_path = "/proc/sys/net/ipv4/ip_local_reserved_ports";
} // namespace

namespace {

// The list in one read from offset 0: the kernel renders it whole at each
// read there, and a read at any other offset is empty (so a list longer
// than the buffer is read again, whole, into a bigger one).
std::optional<port_bitmap> read_at(int fd, std::string& text, std::error_code& ec) {
  std::size_t size = std::max<std::size_t>(text.capacity(), 64 * 1024);
  while (true) {
    text.resize(size);
    const auto n = ::pread(fd, text.data(), size, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ec = {errno, std::system_category()};
      return std::nullopt;
    }
    if (static_cast<std::size_t>(n) < size) {
      text.resize(static_cast<std::size_t>(n));
      break;
    }
    if (size >= (1u << 20)) { // the longest list (every other port) is about 200 KB
      ec = error::bad_response;
      return std::nullopt;
    }
    size *= 2;
  }
  auto ports = linux_files::parse_port_list(text);
  if (!ports) {
    ec = error::bad_response;
  } else {
    ec.clear();
  }
  return ports;
}

} // namespace

std::optional<port_bitmap> read(std::error_code& ec) {
  const auto fd = linux_files::open_nofollow(sysctl_path, O_RDONLY, ec);
  if (!fd) return std::nullopt;
  std::string text;
  return read_at(fd.get(), text, ec);
}

std::optional<port_bitmap> reader::read(std::error_code& ec) {
  if (!fd_) {
    fd_ = linux_files::open_nofollow(sysctl_path, O_RDONLY, ec);
    if (!fd_) return std::nullopt;
  }
  return read_at(fd_.get(), text_, ec);
}

std::error_code write_exact(const port_bitmap& next, const port_bitmap& current, std::string& why) {
  why.clear();
  if (next == current) return {};
  port_bitmap removed = current;
  removed.remove(next);
  // Only additions: written at a non-zero offset they are added to the
  // list, which never loses an entry on the way. Removals need a write at
  // offset 0, which replaces the list with its first page.
  const bool adding_only = removed == port_bitmap{};
  port_bitmap text = next;
  if (adding_only) text.remove(current);
  std::error_code ec;
  auto fd = linux_files::open_nofollow(sysctl_path, O_WRONLY, ec);
  if (!fd) {
    why = std::string("opening ") + sysctl_path + " for writing: " + ec.message();
    return ec;
  }
  off_t offset = adding_only ? 1 : 0;
  // Pieces well under a page: each write is taken whole (short counts are
  // still handled), and a list of any length goes in.
  auto all = linux_files::format_port_list_pieces(text, 4000);
  if (all.empty()) all.emplace_back(); // an empty list: one write of "\n" at offset 0
  for (auto& piece : all) {
    piece += '\n';
    std::size_t done = 0;
    while (done < piece.size()) {
      const auto n = ::pwrite(fd.get(), piece.data() + done, piece.size() - done, offset);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ec = n < 0 ? std::error_code(errno, std::system_category()) : std::make_error_code(std::errc::io_error);
        why = std::string("writing ") + sysctl_path + ": " + ec.message();
        return ec;
      }
      done += static_cast<std::size_t>(n);
      offset += n; // never 0 again: the rest is added, not a replacement
    }
  }
  const auto back = read(ec);
  if (!back) {
    why = std::string("reading back ") + sysctl_path + ": " + ec.message();
    return ec;
  }
  if (!(*back == next)) {
    why = std::string(sysctl_path) + " read back differs from what was written (another writer changed it)";
    return std::make_error_code(std::errc::io_error);
  }
  return {};
}

bool writable(std::string& reason) {
  // Privilege does not change during a process' life: ask once.
  static const std::string failure = [] {
    std::error_code ec;
    if (linux_files::open_nofollow(sysctl_path, O_WRONLY, ec)) return std::string();
    return std::string("cannot write ") + sysctl_path + " (" + ec.message() + "; needs root in this network namespace)";
  }();
  reason = failure;
  return failure.empty();
}

port_bitmap to_enforce(const port_bitmap& blocks, port_range ephemeral) {
  port_bitmap wanted = blocks;
  port_bitmap outside;
  if (ephemeral.first() > 0) outside.set_range(0, ephemeral.first() - 1u);
  if (ephemeral.last() < port_range::max_port) outside.set_range(ephemeral.last() + 1u, port_range::max_port);
  wanted.remove(outside);
  return wanted;
}

double required_free_share() {
  const char* text = std::getenv("PORTRES_EPHEMERAL_FREE_SHARE");
  if (text == nullptr || *text == '\0') return 0.5;
  char* end = nullptr;
  const double share = std::strtod(text, &end);
  if (end == text || *end != '\0' || !(share >= 0.0 && share <= 1.0)) return 0.5; // nonsense keeps the default
  return share;
}

std::error_code check_free_share(const port_bitmap& reserved, port_range ephemeral, double share,
                                 std::uint32_t& remaining) {
  const std::uint32_t first = ephemeral.first();
  const std::uint32_t last = ephemeral.last();
  const std::uint32_t taken = reserved.count(first, last);
  remaining = ephemeral.count() - taken;
  const auto needed = static_cast<std::uint32_t>(std::ceil(share * ephemeral.count()));
  return remaining < needed ? std::error_code(error::ephemeral_starved) : std::error_code();
}

} // namespace portres::detail::reserved_ports
