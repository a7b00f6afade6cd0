#include "linux/reserved_ports.hpp"

#include "linux/state_files.hpp"
#include "portres/error.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>

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

std::optional<port_bitmap> write(const port_bitmap& owned, const port_bitmap& wanted, std::error_code& ec,
                                 const port_bitmap* known) {
  const auto current = known ? std::optional(*known) : read(ec);
  if (!current) return std::nullopt;
  port_bitmap foreign = *current;
  foreign.remove(owned);
  port_bitmap next = foreign;
  next |= wanted;
  if (!(next == *current)) {
    auto fd = linux_files::open_nofollow(sysctl_path, O_WRONLY | O_TRUNC, ec);
    if (!fd) return std::nullopt;
    const auto text = linux_files::format_port_list(next);
    const std::string line = text.empty() ? std::string("\n") : text + "\n";
    if (::write(fd.get(), line.data(), line.size()) < 0) {
      ec = {errno, std::system_category()};
      return std::nullopt;
    }
  }
  port_bitmap now_owned = wanted;
  now_owned.remove(foreign);
  ec.clear();
  return now_owned;
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
  for (std::uint32_t from = first; from <= last;) {
    const auto set = reserved.next_set(from, last);
    if (!set) break;
    const auto clear = reserved.next_clear(*set, last);
    const std::uint32_t end = clear ? *clear : last + 1;
    taken += end - *set;
    from = end;
  }
  remaining = ephemeral.count() - taken;
  const auto needed = static_cast<std::uint32_t>(std::ceil(share * ephemeral.count()));
  return remaining < needed ? std::error_code(error::ephemeral_starved) : std::error_code();
}

} // namespace portres::detail::reserved_ports
