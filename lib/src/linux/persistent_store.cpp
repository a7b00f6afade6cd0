#include "linux/persistent_store.hpp"

#include "linux/state_files.hpp"
#include "portres/error.hpp"

#include <gsl/gsl>

#include <charconv>
#include <cstdlib>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <sstream>

namespace portres::detail::linux_store {
namespace {

std::uint64_t mix(std::uint64_t h, std::uint64_t v) {
  // FNV-1a over the bytes of v.
  for (int i = 0; i < 8; ++i) {
    h ^= (v >> (8 * i)) & 0xff;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::string boot_id() {
  std::error_code ec;
  auto id = linux_files::read_file("/proc/sys/kernel/random/boot_id", ec).value_or("");
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  return id;
}

} // namespace

std::string directory() {
  const char* dir = std::getenv("PORTRES_STATE_DIR");
  return dir && *dir ? dir : "/var/lib/portres";
}

std::vector<entry> parse(const std::string& text, std::error_code& ec) {
  ec.clear();
  std::vector<entry> entries;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string proto, first_text, count_text, extra;
    if (!(fields >> proto >> first_text >> count_text) || (fields >> extra)) {
      ec = error::malformed_state;
      return {};
    }
    unsigned first = 0, count = 0;
    const auto f = std::from_chars(first_text.data(), first_text.data() + first_text.size(), first);
    const auto c = std::from_chars(count_text.data(), count_text.data() + count_text.size(), count);
    if (f.ec != std::errc{} || f.ptr != first_text.data() + first_text.size() || c.ec != std::errc{} ||
        c.ptr != count_text.data() + count_text.size() || (proto != "tcp" && proto != "udp") || first == 0 ||
        first > port_range::max_port) {
      ec = error::malformed_state;
      return {};
    }
    const port_range range(gsl::narrow_cast<std::uint16_t>(first), count);
    if (range.validate(false)) {
      ec = error::malformed_state;
      return {};
    }
    entries.push_back({proto == "tcp" ? protocol::tcp : protocol::udp, range});
  }
  return entries;
}

std::string format(const std::vector<entry>& entries) {
  std::string out = "# portres persistent reservations: protocol first-port count\n";
  for (const auto& e : entries) {
    out += std::string(to_string(e.proto)) + " " + std::to_string(e.range.first()) + " " +
           std::to_string(e.range.count()) + "\n";
  }
  return out;
}

std::vector<entry> load(std::error_code& ec) {
  auto dir = linux_files::open_dir(directory(), linux_files::dir_access::readable, false, ec);
  if (!dir) {
    if (ec == std::errc::no_such_file_or_directory) ec.clear(); // no store yet
    return {};
  }
  const auto text = linux_files::read_file_at(dir.get(), "persistent", ec);
  if (ec || !text) return {};
  return parse(*text, ec);
}

std::error_code save(const std::vector<entry>& entries) {
  std::error_code ec;
  auto dir = linux_files::open_dir(directory(), linux_files::dir_access::readable, true, ec);
  if (!dir) return ec;
  // A store that does not parse is kept beside the new one, never lost.
  const auto old = linux_files::read_file_at(dir.get(), "persistent", ec);
  if (old) {
    std::error_code parse_ec;
    parse(*old, parse_ec);
    if (parse_ec) {
      const std::string kept = "persistent.bad." + std::to_string(::time(nullptr));
      if (::renameat(dir.get(), "persistent", dir.get(), kept.c_str()) != 0) return {errno, std::system_category()};
    }
  }
  return linux_files::write_file_atomic_at(dir.get(), "persistent", format(entries));
}

reservation_token token_of(const entry& e) {
  static const std::string boot = boot_id();
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const char ch : boot) h = mix(h, static_cast<unsigned char>(ch));
  h = mix(h, static_cast<std::uint64_t>(e.proto));
  h = mix(h, e.range.first());
  h = mix(h, e.range.count());
  h ^= h >> 31;
  return reservation_token{h == 0 ? 1 : h};
}

} // namespace portres::detail::linux_store
