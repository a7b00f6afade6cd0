#include "linux/registry.hpp"

#include "core/block_placement.hpp"
#include "linux/registry_format.hpp"
#include "linux/state_files.hpp"
#include "platform.hpp"

#include <gsl/gsl>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <mutex>

#include <cmath>
#include <cstdio>

#include <dirent.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace portres::detail {
namespace {

using linux_files::unique_fd;

constexpr const char* reserved_ports_sysctl = "/proc/sys/net/ipv4/ip_local_reserved_ports";
constexpr std::string_view record_prefix = "r-";
constexpr std::string_view pending_prefix = "new-"; // a record being written, locked, not yet published

struct live_entry {
  protocol proto;
  port_range range;
  reservation_token token;
  std::uint32_t pid;
  std::uint64_t netns;
};

std::string token_hex(reservation_token t) { return to_string(t).substr(2); }

std::string entry_name(protocol p, reservation_token t) {
  return std::string(record_prefix) + to_string(p) + "-" + token_hex(t);
}

std::string default_directory(std::string& reason) {
  if (const char* dir = std::getenv("PORTRES_RUNTIME_DIR"); dir && *dir) return dir;
  if (::geteuid() == 0) return "/run/portres";
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg && *xdg) return std::string(xdg) + "/portres";
  reason = "no per-user registry folder (not root and XDG_RUNTIME_DIR unset; set PORTRES_RUNTIME_DIR or start "
           "portresd)";
  return {};
}

// Live and persistent blocks of this namespace where they meet the ephemeral range.
port_bitmap ephemeral_part(const std::vector<port_range>& blocks, port_range eph) {
  port_bitmap ports;
  for (const auto r : blocks) {
    const auto lo = std::max<std::uint32_t>(r.first(), eph.first());
    const auto hi = std::min<std::uint32_t>(r.last(), eph.last());
    if (lo <= hi) ports.set_range(lo, hi);
  }
  return ports;
}

} // namespace

std::uint64_t current_netns() {
  struct stat st {};
  return ::stat("/proc/self/ns/net", &st) == 0 ? static_cast<std::uint64_t>(st.st_ino) : 0;
}

double min_ephemeral_share() {
  const char* text = std::getenv("PORTRES_MIN_EPHEMERAL_SHARE");
  if (text == nullptr || *text == '\0') return 0.5;
  char* end = nullptr;
  const double share = std::strtod(text, &end);
  return end != text && *end == '\0' && share >= 0.0 && share <= 1.0 ? share : 0.5;
}

std::error_code check_ephemeral_share(port_range eph, const port_bitmap& reserved_after) {
  std::uint32_t reserved = 0;
  for (std::uint32_t port = eph.first(); port <= eph.last(); ++port) reserved += reserved_after.test(port) ? 1 : 0;
  const std::uint32_t remaining = eph.count() - reserved;
  const auto minimum = static_cast<std::uint32_t>(std::ceil(min_ephemeral_share() * eph.count()));
  return remaining < minimum ? ephemeral_share_error(remaining) : std::error_code();
}

class linux_registry final : public registry {
  class file_lease final : public lease {
  public:
    file_lease(linux_registry& owner, std::string name, unique_fd fd)
        : owner_(&owner), name_(std::move(name)), fd_(std::move(fd)) {}
    ~file_lease() override {
      if (owner_) {
        std::error_code ignored;
        owner_->drop(*this, blocking::allowed, ignored);
      }
    }

  private:
    friend class linux_registry;
    linux_registry* owner_;
    std::string name_;
    unique_fd fd_; // holds the flock that says "alive"
  };

  // The registry lock: an in-process mutex (flock does not exclude threads
  // sharing one open file) and the folder-wide flock. The lock file lives in
  // a 0700 folder: no other user can open it, so nobody else can hold it.
  class guard {
  public:
    guard(linux_registry& r, blocking b, std::error_code& ec) : lock_(r.mutex_, std::defer_lock) {
      if (b == blocking::forbidden) {
        if (!lock_.try_lock()) {
          ec = std::make_error_code(std::errc::operation_would_block);
          return;
        }
      } else {
        lock_.lock();
      }
      // flock belongs to the open file description, which a forked child
      // shares with its parent: a child takes its own before locking.
      if (r.lock_pid_ != ::getpid()) ec = r.open_lock();
      if (!ec) ec = linux_files::lock_exclusive(r.lock_fd_.get(), b);
      if (ec) {
        lock_.unlock();
        return;
      }
      fd_ = r.lock_fd_.get();
    }
    ~guard() {
      if (fd_ >= 0) ::flock(fd_, LOCK_UN);
    }
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;

  private:
    std::unique_lock<std::mutex> lock_;
    int fd_ = -1;
  };

public:
  explicit linux_registry(std::string dir) : dir_(std::move(dir)), placement_(default_placement()) {}

  // The folder is opened once; everything after is relative to it.
  std::error_code open() {
    std::error_code ec;
    dir_fd_ = linux_files::open_dir(dir_, linux_files::dir_access::owner_only, true, ec);
    if (ec) return ec;
    return open_lock();
  }

  const std::string& directory() const noexcept { return dir_; }

  std::unique_ptr<lease> grant(protocol p, port_range request, reservation_token token, blocking b,
                               port_range& granted, std::error_code& ec) override {
    guard g(*this, b, ec);
    if (ec) return nullptr;
    const auto netns = current_netns();
    auto live = scan(true, ec);
    if (ec) return nullptr;
    // A damaged store is reported by capabilities(); runtime grants go on.
    std::error_code store_ec;
    const auto stored = linux_store::load(store_ec);
    std::vector<port_range> occupied;
    for (const auto& e : live) {
      if (e.proto == p && same_namespace(e, netns)) occupied.push_back(e.range);
    }
    for (const auto& e : stored) {
      if (e.proto == p) occupied.push_back(e.range);
    }
    const auto held = held_ports_for(p, request, ec);
    if (ec) return nullptr;
    const auto ephemeral = platform::ephemeral_range();
    granted = place_block(request, placement_, ephemeral, occupied, held, ec);
    if (ec) return nullptr;
    const bool enforced = kernel_available();
    if (enforced && (ec = check_share(live, stored, granted, netns))) return nullptr;
    // Writing the sysctl may wait: leave that to the blocking pool.
    if (b == blocking::forbidden && enforced && kernel_needs_update(live, stored, &granted, netns)) {
      ec = std::make_error_code(std::errc::operation_would_block);
      return nullptr;
    }
    auto fd = publish(p, granted, token, netns, ec);
    if (!fd) return nullptr;
    live.push_back({p, granted, token, platform::process_id(), netns});
    sync_kernel(live, stored, netns);
    return std::make_unique<file_lease>(*this, entry_name(p, token), std::move(fd));
  }

  void release(lease& l, blocking b, std::error_code& ec) override { drop(static_cast<file_lease&>(l), b, ec); }

  std::error_code classify_unknown(reservation_token token, blocking) override {
    for (const auto p : {protocol::tcp, protocol::udp}) {
      const auto name = entry_name(p, token);
      if (::faccessat(dir_fd_.get(), name.c_str(), F_OK, AT_SYMLINK_NOFOLLOW) == 0 &&
          !linux_files::is_abandoned_at(dir_fd_.get(), name)) {
        return error::foreign_token;
      }
    }
    return error::unknown_token;
  }

  std::optional<port_range> persistent_block(protocol p, reservation_token token, blocking,
                                             std::error_code& ec) override {
    const auto stored = linux_store::load(ec);
    if (ec) return std::nullopt;
    for (const auto& e : stored) {
      if (e.proto != p || linux_store::token_of(e) != token) continue;
      if ((ec = persistent_access())) return std::nullopt;
      return e.range;
    }
    return std::nullopt;
  }

  // Using a persistent block takes the rights creating one takes (as on Windows).
  std::error_code persistent_access() const override {
    return ::geteuid() == 0 ? std::error_code() : std::error_code(error::privilege_required);
  }

  reservation_token create_persistent(const linux_store::entry& e, std::error_code& ec) {
    guard g(*this, blocking::allowed, ec);
    if (ec) return {};
    const auto netns = current_netns();
    auto live = scan(true, ec);
    if (ec) return {};
    auto stored = linux_store::load(ec); // never written over when it does not parse
    if (ec) return {};
    std::vector<port_range> occupied;
    for (const auto& s : stored) {
      if (s.proto == e.proto) occupied.push_back(s.range);
    }
    for (const auto& l : live) {
      if (l.proto == e.proto && same_namespace(l, netns)) occupied.push_back(l.range);
    }
    const auto held = platform::held_ports(e.proto, e.range, ec);
    if (ec) return {};
    if ((ec = check_specific_block(e.range, occupied, held))) return {};
    if (kernel_available() && (ec = check_share(live, stored, e.range, netns))) return {};
    stored.push_back(e);
    if ((ec = linux_store::save(stored))) return {};
    sync_kernel(live, stored, netns);
    return linux_store::token_of(e);
  }

  void remove_persistent(const linux_store::entry& e, std::error_code& ec) {
    guard g(*this, blocking::allowed, ec);
    if (ec) return;
    auto live = scan(true, ec);
    if (ec) return;
    auto stored = linux_store::load(ec);
    if (ec) return;
    if (std::erase(stored, e) == 0) {
      ec = error::unknown_token;
      return;
    }
    if ((ec = linux_store::save(stored))) return;
    sync_kernel(live, stored, current_netns());
  }

  void apply(std::error_code& ec) {
    guard g(*this, blocking::allowed, ec);
    if (ec) return;
    const auto live = scan(true, ec);
    if (ec) return;
    const auto stored = linux_store::load(ec);
    if (ec) return;
    if (!sync_kernel(live, stored, current_netns())) ec = error::privilege_required;
  }

  // A listing: no lock taken, nothing removed (a dead holder's file stays
  // until the next registry operation, which also updates the kernel list).
  std::vector<runtime_entry> entries(std::error_code& ec) {
    std::vector<runtime_entry> out;
    for (const auto& e : scan(false, ec)) out.push_back({e.proto, e.range, e.pid});
    return out;
  }

private:
  static bool same_namespace(const live_entry& e, std::uint64_t netns) {
    return e.netns == 0 || netns == 0 || e.netns == netns;
  }

  std::error_code open_lock() {
    std::error_code ec;
    lock_fd_ = linux_files::open_at(dir_fd_.get(), "lock", O_RDWR | O_CREAT, ec);
    lock_pid_ = ::getpid();
    return ec;
  }

  // Writes the record under a pending name, already locked, then publishes it
  // by rename: a record is never visible without its holder's lock.
  unique_fd publish(protocol p, port_range granted, reservation_token token, std::uint64_t netns,
                    std::error_code& ec) {
    const auto name = entry_name(p, token);
    const auto pending = std::string(pending_prefix) + token_hex(token) + "-" + std::to_string(::getpid());
    auto fd = linux_files::open_at(dir_fd_.get(), pending, O_RDWR | O_CREAT | O_EXCL, ec);
    if (!fd) return {};
    auto discard = gsl::finally([&] {
      if (fd) ::unlinkat(dir_fd_.get(), pending.c_str(), 0);
    });
    if ((ec = linux_files::lock_exclusive(fd.get(), blocking::allowed))) return {};
    const std::string content =
        linux_registry_format::format({p, granted, platform::process_id(), netns});
    if (::write(fd.get(), content.data(), content.size()) != static_cast<ssize_t>(content.size())) {
      ec = {errno, std::system_category()};
      return {};
    }
    if (::renameat2(dir_fd_.get(), pending.c_str(), dir_fd_.get(), name.c_str(), RENAME_NOREPLACE) != 0) {
      ec = {errno, std::system_category()}; // EEXIST: a token collision, retried by the caller
      return {};
    }
    unique_fd published = std::move(fd);
    return published;
  }

  void drop(file_lease& l, blocking b, std::error_code& ec) {
    if (l.owner_ == nullptr) {
      ec = error::already_released;
      return;
    }
    guard g(*this, b, ec);
    if (ec) return;
    ::unlinkat(dir_fd_.get(), l.name_.c_str(), 0);
    l.fd_ = unique_fd();
    l.owner_ = nullptr;
    std::error_code scan_ec, store_ec;
    const auto live = scan(true, scan_ec);
    const auto stored = linux_store::load(store_ec);
    if (!scan_ec) sync_kernel(live, stored, current_netns());
  }

  // Live entries. With `remove` (only under the registry lock) files whose
  // holder died and pending files left by a killed writer are deleted.
  std::vector<live_entry> scan(bool remove, std::error_code& ec) {
    ec.clear();
    std::vector<live_entry> live;
    auto listing_fd = linux_files::open_at(dir_fd_.get(), ".", O_RDONLY | O_DIRECTORY, ec);
    if (!listing_fd) return live;
    DIR* dir = ::fdopendir(listing_fd.get());
    if (dir == nullptr) {
      ec = {errno, std::system_category()};
      return live;
    }
    listing_fd.release(); // closedir closes it
    auto close = gsl::finally([dir] { ::closedir(dir); });
    while (const dirent* d = ::readdir(dir)) {
      const std::string name = d->d_name;
      if (name.rfind(pending_prefix, 0) == 0) {
        if (remove && linux_files::is_abandoned_at(dir_fd_.get(), name)) ::unlinkat(dir_fd_.get(), name.c_str(), 0);
        continue;
      }
      if (name.rfind(record_prefix, 0) != 0 || name.size() != 2 + 4 + 16) continue;
      std::uint64_t value = 0;
      const char* hex = name.data() + 6;
      if (std::from_chars(hex, hex + 16, value, 16).ec != std::errc{}) continue;
      if (linux_files::is_abandoned_at(dir_fd_.get(), name)) {
        if (remove) ::unlinkat(dir_fd_.get(), name.c_str(), 0);
        continue;
      }
      std::error_code read_ec;
      const auto text = linux_files::read_file_at(dir_fd_.get(), name, read_ec);
      if (!text) continue;
      // A live file we cannot parse is skipped, never trusted.
      if (auto r = linux_registry_format::parse(*text)) {
        live.push_back({r->proto, r->range, reservation_token{value}, r->pid, r->netns});
      }
    }
    return live;
  }

  // The ports portres wants the kernel of this namespace to keep from
  // automatic allocation: every live block of the namespace and every
  // persistent block, where they meet the ephemeral range.
  static port_bitmap wanted_ports(const std::vector<live_entry>& live, const std::vector<linux_store::entry>& stored,
                                  const port_range* extra, std::uint64_t netns) {
    std::vector<port_range> blocks;
    for (const auto& e : live) {
      if (same_namespace(e, netns)) blocks.push_back(e.range);
    }
    for (const auto& e : stored) blocks.push_back(e.range);
    if (extra) blocks.push_back(*extra);
    return ephemeral_part(blocks, platform::ephemeral_range());
  }

  static bool kernel_available() {
    std::string reason;
    return kernel_enforcement_available(reason);
  }

  // Which entries of ip_local_reserved_ports portres added: kept per network
  // namespace, since the sysctl is per namespace while a folder may be shared.
  static std::string owned_name(std::uint64_t netns) { return "kernel-owned." + std::to_string(netns); }

  port_bitmap owned_ports(std::uint64_t netns) {
    std::error_code ec;
    const auto text = linux_files::read_file_at(dir_fd_.get(), owned_name(netns), ec);
    return linux_files::parse_port_list(text.value_or("")).value_or(port_bitmap{});
  }

  // Refuses a block that would leave too little of the ephemeral range.
  std::error_code check_share(const std::vector<live_entry>& live, const std::vector<linux_store::entry>& stored,
                              port_range block, std::uint64_t netns) {
    std::error_code ec;
    const auto text = linux_files::read_file(reserved_ports_sysctl, ec);
    auto reserved = linux_files::parse_port_list(text.value_or("")).value_or(port_bitmap{});
    reserved |= wanted_ports(live, stored, &block, netns);
    return check_ephemeral_share(platform::ephemeral_range(), reserved);
  }

  bool kernel_needs_update(const std::vector<live_entry>& live, const std::vector<linux_store::entry>& stored,
                           const port_range* extra, std::uint64_t netns) {
    return !(owned_ports(netns) == wanted_ports(live, stored, extra, netns));
  }

  // Rewrites ip_local_reserved_ports as (entries portres did not add) plus
  // (what portres wants now). Returns false when the kernel cannot be written.
  bool sync_kernel(const std::vector<live_entry>& live, const std::vector<linux_store::entry>& stored,
                   std::uint64_t netns) {
    if (!kernel_available()) return false;
    std::error_code ec;
    const auto current_text = linux_files::read_file(reserved_ports_sysctl, ec);
    if (!current_text) return false;
    const auto current = linux_files::parse_port_list(*current_text);
    if (!current) return false;
    const auto owned = owned_ports(netns);
    const auto wanted = wanted_ports(live, stored, nullptr, netns);
    port_bitmap foreign = *current;
    foreign.remove(owned);
    port_bitmap next = foreign;
    next |= wanted;
    port_bitmap now_owned = wanted;
    now_owned.remove(foreign);
    if (!(next == *current)) {
      const auto next_text = linux_files::format_port_list(next);
      auto fd = linux_files::open_nofollow(reserved_ports_sysctl, O_WRONLY | O_TRUNC, ec);
      if (!fd) return false;
      const std::string line = next_text.empty() ? std::string("\n") : next_text + "\n";
      if (::write(fd.get(), line.data(), line.size()) < 0) return false;
    }
    if (!(now_owned == owned)) {
      linux_files::write_file_atomic_at(dir_fd_.get(), owned_name(netns),
                                        linux_files::format_port_list(now_owned) + "\n");
    }
    return true;
  }

  std::string dir_;
  unique_fd dir_fd_;
  std::mutex mutex_;
  unique_fd lock_fd_;
  pid_t lock_pid_ = 0; // the process that opened lock_fd_
  port_range placement_;
};

std::shared_ptr<linux_registry> linux_registry_instance(std::string& reason) {
  static std::mutex mutex;
  static std::shared_ptr<linux_registry> instance;
  static std::string failure;
  std::lock_guard lock(mutex);
  if (!instance && failure.empty()) {
    std::string why;
    const auto dir = default_directory(why);
    if (dir.empty()) {
      failure = why;
    } else {
      auto r = std::make_shared<linux_registry>(dir);
      if (auto ec = r->open()) {
        failure = "registry folder " + dir + ": " + ec.message();
      } else {
        instance = std::move(r);
      }
    }
  }
  reason = failure;
  return instance;
}

std::shared_ptr<registry> as_registry(std::shared_ptr<linux_registry> r) { return r; }

reservation_token linux_persistent_create(linux_registry& r, linux_store::entry e, std::error_code& ec) {
  return r.create_persistent(e, ec);
}

void linux_persistent_remove(linux_registry& r, linux_store::entry e, std::error_code& ec) {
  r.remove_persistent(e, ec);
}

void linux_persistent_apply(linux_registry& r, std::error_code& ec) { r.apply(ec); }

std::vector<runtime_entry> linux_runtime_entries(linux_registry& r, std::error_code& ec) { return r.entries(ec); }

bool kernel_enforcement_available(std::string& reason) {
  // Privilege does not change during a process' life: ask once.
  static const std::string failure = [] {
    std::error_code ec;
    if (linux_files::open_nofollow(reserved_ports_sysctl, O_WRONLY, ec)) return std::string();
    return std::string("cannot write ") + reserved_ports_sysctl + " (" + ec.message() +
           "; needs root in this network namespace)";
  }();
  reason = failure;
  return failure.empty();
}

} // namespace portres::detail
