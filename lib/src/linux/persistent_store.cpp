#include "linux/persistent_store.hpp"

#include "core/block_placement.hpp"
#include "linux/state_files.hpp"
#include "platform.hpp"
#include "portres/error.hpp"

#include <gsl/gsl>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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

namespace {

// The store folder, opened once per operation without following a symlink:
// owned by us or root, not writable by others (others may read: lookup).
linux_files::unique_fd open_store_dir(bool create, std::error_code& ec) {
  const auto path = directory();
  if (create && ::mkdir(path.c_str(), ::geteuid() == 0 ? 0755 : 0700) != 0 && errno != EEXIST) {
    ec = {errno, std::system_category()};
    return {};
  }
  auto dir = linux_files::open_nofollow(path, O_RDONLY | O_DIRECTORY, ec);
  if (!dir) return {};
  struct stat st {};
  if (::fstat(dir.get(), &st) != 0 || (st.st_uid != ::geteuid() && st.st_uid != 0) ||
      (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    ec = error::unsafe_path;
    return {};
  }
  return dir;
}

std::vector<entry> load_at(int dir, std::error_code& ec) {
  const auto text = linux_files::read_file_at(dir, "persistent", ec);
  if (ec || !text) return {};
  return parse(*text, ec);
}

} // namespace

std::vector<entry> load(std::error_code& ec) {
  auto dir = open_store_dir(false, ec);
  if (!dir) {
    if (ec == std::errc::no_such_file_or_directory) ec.clear(); // no store yet
    return {};
  }
  return load_at(dir.get(), ec);
}

std::error_code save(const std::vector<entry>& entries) {
  return update([&](std::vector<entry>& stored) {
    stored = entries;
    return std::error_code();
  });
}

std::error_code update(const std::function<std::error_code(std::vector<entry>&)>& change) {
  std::error_code ec;
  auto dir = open_store_dir(true, ec);
  if (!dir) return ec;
  auto lock = linux_files::open_at(dir.get(), "lock", O_RDWR | O_CREAT, ec);
  if (!lock) return ec;
  if ((ec = linux_files::lock_exclusive(lock.get(), blocking::allowed))) return ec;
  auto stored = load_at(dir.get(), ec);
  if (ec) return ec;
  if ((ec = change(stored))) return ec;
  return linux_files::write_file_atomic_at(dir.get(), "persistent", format(stored), 0644);
}

std::vector<entry> add(const entry& e, const std::vector<port_range>& live,
                       const std::function<std::error_code(const std::vector<entry>&)>& admit, std::error_code& ec) {
  std::vector<entry> after;
  ec = update([&](std::vector<entry>& stored) {
    std::vector<port_range> occupied = live;
    for (const auto& s : stored) {
      if (s.proto == e.proto) occupied.push_back(s.range);
    }
    std::error_code held_ec;
    const auto held = platform::held_ports(e.proto, e.range, held_ec);
    if (held_ec) return held_ec;
    if (auto conflict = check_specific_block(e.range, occupied, held)) return conflict;
    if (auto refused = admit(stored)) return refused;
    stored.push_back(e);
    after = stored;
    return std::error_code();
  });
  return after;
}

std::vector<entry> remove(const entry& e, std::error_code& ec) {
  std::vector<entry> after;
  ec = update([&](std::vector<entry>& stored) {
    if (std::erase(stored, e) == 0) return std::error_code(error::unknown_token);
    after = stored;
    return std::error_code();
  });
  return after;
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
