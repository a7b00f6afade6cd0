#include "linux/persistent_store.hpp"

#include "linux/state_files.hpp"
#include "portres/error.hpp"

#include <gsl/gsl>

#include <charconv>
#include <cstdlib>
#include <fstream>
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
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
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
  if ((ec = linux_files::check_private_dir(directory()))) return {};
  const auto text = linux_files::read_file(directory() + "/persistent", ec);
  if (ec || !text) return {};
  return parse(*text, ec);
}

std::error_code save(const std::vector<entry>& entries) {
  if (auto ec = linux_files::ensure_private_dir(directory())) return ec;
  return linux_files::write_file_atomic(directory() + "/persistent", format(entries));
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
