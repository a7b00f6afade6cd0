#include "linux/reserved_ports.hpp"

#include "linux/state_files.hpp"
#include "portres/error.hpp"

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

std::optional<port_bitmap> read(std::error_code& ec) {
  const auto text = linux_files::read_file(sysctl_path, ec);
  if (!text) {
    if (!ec) ec = std::make_error_code(std::errc::no_such_file_or_directory);
    return std::nullopt;
  }
  auto ports = linux_files::parse_port_list(*text);
  if (!ports) ec = error::bad_response;
  return ports;
}

std::optional<port_bitmap> reader::read(std::error_code& ec) {
  if (!fd_) {
    fd_ = linux_files::open_nofollow(sysctl_path, O_RDONLY, ec);
    if (!fd_) return std::nullopt;
  }
  // A /proc/sys file is generated afresh at each read from offset 0.
  text_.resize(64 * 1024);
  std::size_t size = 0;
  while (true) {
    const auto n = ::pread(fd_.get(), text_.data() + size, text_.size() - size, static_cast<off_t>(size));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ec = {errno, std::system_category()};
      return std::nullopt;
    }
    size += static_cast<std::size_t>(n);
    if (n == 0 || size < text_.size()) break;
    if (text_.size() >= (1u << 20)) break; // the longest possible list is far shorter
    text_.resize(text_.size() * 2);
  }
  text_.resize(size);
  auto ports = linux_files::parse_port_list(text_);
  if (!ports) ec = error::bad_response;
  else ec.clear();
  return ports;
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
  std::uint32_t taken = 0;
  reserved.for_each_run(first, last, [&](std::uint32_t a, std::uint32_t b) { taken += b - a + 1; });
  remaining = ephemeral.count() - taken;
  const auto needed = static_cast<std::uint32_t>(std::ceil(share * ephemeral.count()));
  return remaining < needed ? std::error_code(error::ephemeral_starved) : std::error_code();
}

} // namespace portres::detail::reserved_ports
