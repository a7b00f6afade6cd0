#include "linux/proc_net.hpp"

#include <charconv>
#include <string_view>

namespace portres::detail::linux_proc {
namespace {

// Splits off the next blank-separated field.
std::string_view next_field(std::string_view& rest) {
  const auto start = rest.find_first_not_of(" \t\n");
  if (start == std::string_view::npos) {
    rest = {};
    return {};
  }
  rest.remove_prefix(start);
  const auto end = rest.find_first_of(" \t\n");
  const auto field = rest.substr(0, end);
  rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  return field;
}

template <class T>
bool parse_number(std::string_view text, T& value, int base) {
  if (text.empty()) return false;
  const auto r = std::from_chars(text.data(), text.data() + text.size(), value, base);
  return r.ec == std::errc{} && r.ptr == text.data() + text.size();
}

} // namespace

std::optional<socket_row> parse_row(std::string_view line) {
  auto rest = line;
  const auto slot = next_field(rest);
  if (slot.empty() || slot.back() != ':') return std::nullopt; // also the header ("sl")
  const auto local = next_field(rest);
  const auto remote = next_field(rest);
  const auto state = next_field(rest);
  for (int skip = 0; skip < 5; ++skip) next_field(rest); // queues, timer, retransmits, uid, timeout
  const auto inode = next_field(rest);
  const auto colon = local.rfind(':');
  if (colon == std::string_view::npos || remote.empty()) return std::nullopt;
  socket_row row{};
  unsigned port = 0;
  if (!parse_number(local.substr(colon + 1), port, 16) || port > 65535) return std::nullopt;
  if (!parse_number(state, row.state, 16)) return std::nullopt;
  if (!parse_number(inode, row.inode, 10)) row.inode = 0;
  row.local_port = static_cast<std::uint16_t>(port);
  return row;
}

} // namespace portres::detail::linux_proc
