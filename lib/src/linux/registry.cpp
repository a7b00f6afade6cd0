#include "linux/registry.hpp"

#include "core/block_placement.hpp"
#include "linux/broker_client.hpp"
#include "linux/broker_protocol.hpp"
#include "linux/registry_format.hpp"
#include "linux/registry_scan.hpp"
#include "linux/reserved_ports.hpp"
#include "linux/state_files.hpp"
#include "platform.hpp"

#include <gsl/gsl>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <mutex>

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace portres::detail {

namespace {
bool genuine_broker_answers() {
  std::error_code ec;
  const int fd = broker_link::connect(broker_wire::default_socket_name, ec);
  if (fd < 0) return false; // none, or an impostor (not root): nothing it grants is a reservation
  ::close(fd);
  return true;
}
} // namespace
namespace {

using linux_files::unique_fd;

constexpr const char* reserved_ports_sysctl = "/proc/sys/net/ipv4/ip_local_reserved_ports";

using live_entry = live_record;

std::string token_hex(reservation_token t) { return to_string(t).substr(2); }

std::string entry_name(protocol p, reservation_token t) {
  return std::string("r-") + to_string(p) + "-" + token_hex(t);
}

std::string default_directory(std::string& reason) {
  if (const char* dir = std::getenv("PORTRES_RUNTIME_DIR"); dir && *dir) return dir;
  if (::geteuid() == 0) return "/run/portres";
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg && *xdg) return std::string(xdg) + "/portres";
  reason = "no writable registry folder (/run not writable, XDG_RUNTIME_DIR unset; set PORTRES_RUNTIME_DIR)";
  return {};
}

} // namespace

class linux_registry final : public registry {
  class file_lease final : public lease {
  public:
    file_lease(linux_registry& owner, std::string name, unique_fd fd, pid_t holder)
        : owner_(&owner), name_(std::move(name)), fd_(std::move(fd)), holder_(holder) {}
    ~file_lease() override {
      if (owner_) {
        std::error_code ignored;
        owner_->drop(*this, blocking::allowed, ignored);
      }
    }

  private:
    friend class linux_registry;
    linux_registry* owner_;
    std::string name_; // in the registry folder
    unique_fd fd_; // holds the flock that says "alive"
    pid_t holder_;  // the process that acquired it (a forked child only lets go of its copy)
  };

  // The registry lock: an in-process mutex (flock does not exclude threads
  // sharing one open file) and the folder-wide flock.
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
      if (r.lock_pid_ != ::getpid()) ec = r.open();
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

  std::error_code open() {
    std::error_code ec;
    if (!dir_fd_) {
      dir_fd_ = linux_files::open_private_dir(dir_, ec);
      if (ec) return ec;
    }
    lock_fd_ = linux_files::open_at(dir_fd_.get(), "lock", O_RDWR | O_CREAT, ec);
    struct stat st {};
    if (lock_fd_ && (::fstat(lock_fd_.get(), &st) != 0 || (st.st_mode & 077) != 0)) {
      // Older versions made it 0644: another user may hold it open, so a
      // mode change is not enough; a fresh file (new inode) replaces it.
      ::unlinkat(dir_fd_.get(), "lock", 0);
      lock_fd_ = linux_files::open_at(dir_fd_.get(), "lock", O_RDWR | O_CREAT, ec);
    }
    lock_pid_ = ::getpid();
    return ec;
  }

  const std::string& directory() const noexcept { return dir_; }

  std::unique_ptr<lease> grant(protocol p, port_range request, reservation_token token, blocking b,
                               port_range& granted, std::error_code& ec) override {
    // A portresd that started after this process chose the registry grants
    // blocks the registry cannot see (outside the ephemeral range they are in
    // no kernel list): grant nothing rather than grant twice. One failed
    // connect() per grant when no daemon runs.
    if (genuine_broker_answers()) {
      ec = error::broker_started;
      return nullptr;
    }
    guard g(*this, b, ec);
    if (ec) return nullptr;
    auto live = scan(ec);
    if (ec) return nullptr;
    // A damaged store must not stop runtime reservations; capabilities()
    // reports it and nothing rewrites it until it is repaired.
    auto stored = load_store();
    std::vector<port_range> occupied;
    for (const auto& e : live) {
      if (e.proto == p) occupied.push_back(e.range);
    }
    for (const auto& e : stored) {
      if (e.proto == p) occupied.push_back(e.range);
    }
    add_foreign_kernel_entries(occupied);
    const auto held = held_ports_for(p, request, ec);
    if (ec) return nullptr;
    const auto ephemeral = platform::ephemeral_range();
    granted = place_block(request, placement_, ephemeral, occupied, held, ec);
    if (ec) return nullptr;
    if ((ec = check_starvation(live, stored, granted))) return nullptr;
    // Writing the sysctl may wait: leave that to the blocking pool.
    if (b == blocking::forbidden && kernel_needs_update(live, stored, &granted)) {
      ec = std::make_error_code(std::errc::operation_would_block);
      return nullptr;
    }
    // The record is written and locked before it gets its name: nobody
    // ever sees it unlocked (and takes it for abandoned).
    const std::string name = entry_name(p, token);
    auto fd = linux_files::create_locked_at(dir_fd_.get(), ec);
    if (!fd) return nullptr;
    const std::string content = linux_registry_format::format(
        {p, granted, platform::process_id(), linux_files::network_namespace_id()});
    if (::write(fd.get(), content.data(), content.size()) != static_cast<ssize_t>(content.size())) {
      ec = {errno, std::system_category()};
      return nullptr;
    }
    if ((ec = linux_files::publish_at(fd.get(), dir_fd_.get(), name))) return nullptr;
    live.push_back({p, granted, token, platform::process_id()});
    sync_kernel(live, stored);
    return std::make_unique<file_lease>(*this, name, std::move(fd), ::getpid());
  }

  void release(lease& l, blocking b, std::error_code& ec) override { drop(static_cast<file_lease&>(l), b, ec); }

  std::error_code classify_unknown(reservation_token token, blocking) override {
    for (const auto p : {protocol::tcp, protocol::udp}) {
      const std::string name = entry_name(p, token);
      if (::faccessat(dir_fd_.get(), name.c_str(), F_OK, AT_SYMLINK_NOFOLLOW) == 0 &&
          !linux_files::is_abandoned_at(dir_fd_.get(), name))
        return error::foreign_token;
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
    auto live = scan(ec);
    if (ec) return {};
    std::vector<linux_store::entry> after;
    ec = linux_store::update([&](std::vector<linux_store::entry>& stored) {
      std::vector<port_range> occupied;
      for (const auto& s : stored) {
        if (s.proto == e.proto) occupied.push_back(s.range);
      }
      for (const auto& l : live) {
        if (l.proto == e.proto) occupied.push_back(l.range);
      }
      std::error_code held_ec;
      const auto held = platform::held_ports(e.proto, e.range, held_ec);
      if (held_ec) return held_ec;
      if (auto conflict = check_specific_block(e.range, occupied, held)) return conflict;
      if (auto starved = check_starvation(live, stored, e.range)) return starved;
      stored.push_back(e);
      after = stored;
      return std::error_code();
    });
    if (ec) return {};
    sync_kernel(live, after);
    return linux_store::token_of(e);
  }

  void remove_persistent(const linux_store::entry& e, std::error_code& ec) {
    guard g(*this, blocking::allowed, ec);
    if (ec) return;
    auto live = scan(ec);
    if (ec) return;
    std::vector<linux_store::entry> after;
    ec = linux_store::update([&](std::vector<linux_store::entry>& stored) {
      if (std::erase(stored, e) == 0) return std::error_code(error::unknown_token);
      after = stored;
      return std::error_code();
    });
    if (ec) return;
    sync_kernel(live, after);
  }

  void apply(std::error_code& ec) {
    guard g(*this, blocking::allowed, ec);
    if (ec) return;
    const auto live = scan(ec);
    if (ec) return;
    const auto stored = load_store(ec);
    if (ec) return;
    if (!sync_kernel(live, stored)) ec = error::privilege_required;
  }

  // Listing takes no lock and removes nothing (a dead holder's record is
  // skipped; the next locked operation removes it and updates the kernel).
  std::vector<runtime_entry> entries(std::error_code& ec) {
    std::vector<runtime_entry> out;
    for (const auto& e : scan(ec, false)) out.push_back({e.proto, e.range, e.pid});
    return out;
  }

private:
  void drop(file_lease& l, blocking b, std::error_code& ec) {
    if (l.owner_ == nullptr) {
      ec = error::already_released;
      return;
    }
    if (l.holder_ != ::getpid()) {
      // A forked child's copy: the block stays the acquiring process's (the
      // flock is shared, so closing this descriptor frees nothing).
      l.fd_ = unique_fd();
      l.owner_ = nullptr;
      return;
    }
    guard g(*this, b, ec);
    if (ec) return;
    ::unlinkat(dir_fd_.get(), l.name_.c_str(), 0);
    l.fd_ = unique_fd();
    l.owner_ = nullptr;
    std::error_code scan_ec;
    const auto live = scan(scan_ec);
    const auto stored = load_store();
    if (!scan_ec) sync_kernel(live, stored);
  }

  std::vector<live_entry> scan(std::error_code& ec, bool remove_abandoned = true) {
    return scan_registry(dir_fd_.get(), remove_abandoned, ec);
  }

  // The ports portres wants the kernel to keep from automatic allocation:
  // every live and persistent block, where it meets the ephemeral range.
  static port_bitmap wanted_ports(const std::vector<live_entry>& live, const std::vector<linux_store::entry>& stored,
                                  const port_range* extra) {
    const auto eph = platform::ephemeral_range();
    port_bitmap wanted;
    auto add = [&](port_range r) {
      const auto lo = std::max<std::uint32_t>(r.first(), eph.first());
      const auto hi = std::min<std::uint32_t>(r.last(), eph.last());
      if (lo <= hi) wanted.set_range(lo, hi);
    };
    for (const auto& e : live) add(e.range);
    for (const auto& e : stored) add(e.range);
    if (extra) add(*extra);
    return wanted;
  }

  bool kernel_needs_update(const std::vector<live_entry>& live, const std::vector<linux_store::entry>& stored,
                           const port_range* extra) {
    std::string reason;
    if (!kernel_enforcement_available(reason)) return false;
    std::error_code ec;
    const auto owned_text = linux_files::read_file_at(dir_fd_.get(), owned_name(), ec);
    const auto owned = linux_files::parse_port_list(owned_text.value_or("")).value_or(port_bitmap{});
    auto wanted = wanted_ports(live, stored, extra);
    if (store_damaged_) wanted |= owned; // persistent blocks unknown: remove nothing
    return !(owned == wanted);
  }

  // Rewrites ip_local_reserved_ports as (entries portres did not add) plus
  // (what portres wants now). Returns false when the kernel cannot be written.
  bool sync_kernel(const std::vector<live_entry>& live, const std::vector<linux_store::entry>& stored) {
    std::string reason;
    if (!kernel_enforcement_available(reason)) return false;
    std::error_code ec;
    const auto owned = kernel_owned();
    auto wanted = wanted_ports(live, stored, nullptr);
    if (store_damaged_) wanted |= owned; // persistent blocks unknown: remove nothing
    // Recorded before the kernel changes (as a superset), so a process killed
    // in between leaves no entry the next one would take for someone else's.
    port_bitmap may_own = owned;
    may_own |= wanted;
    if (!(may_own == owned)) {
      linux_files::write_file_atomic_at(dir_fd_.get(), owned_name(), linux_files::format_port_list(may_own) + "\n");
    }
    const auto now_owned = reserved_ports::write(owned, wanted, ec);
    if (!now_owned) return false;
    if (!(*now_owned == may_own)) {
      linux_files::write_file_atomic_at(dir_fd_.get(), owned_name(), linux_files::format_port_list(*now_owned) + "\n");
    }
    return true;
  }

  // Entries of ip_local_reserved_ports this registry did not add (portresd's
  // grants, an administrator's): reserved for someone else, never granted.
  void add_foreign_kernel_entries(std::vector<port_range>& occupied) {
    std::error_code ec;
    auto foreign = reserved_ports::read(ec);
    if (!foreign) return;
    std::string reason;
    if (kernel_enforcement_available(reason)) foreign->remove(kernel_owned());
    std::uint32_t from = 0;
    while (const auto first = foreign->next_set(from, port_range::max_port)) {
      const auto after = foreign->next_clear(*first, port_range::max_port);
      const std::uint32_t last = after ? *after - 1 : port_range::max_port;
      occupied.emplace_back(gsl::narrow_cast<std::uint16_t>(*first), last - *first + 1);
      if (!after) break;
      from = *after;
    }
  }

  port_bitmap kernel_owned() {
    std::error_code ec;
    const auto text = linux_files::read_file_at(dir_fd_.get(), owned_name(), ec);
    return linux_files::parse_port_list(text.value_or("")).value_or(port_bitmap{});
  }

  // Refuses a block that would leave too little of the ephemeral range to
  // automatic allocation (the sysctl is shared by TCP and UDP).
  std::error_code check_starvation(const std::vector<live_entry>& live, const std::vector<linux_store::entry>& stored,
                                   port_range block) {
    std::string reason;
    const auto eph = platform::ephemeral_range();
    if (!kernel_enforcement_available(reason) || !block.overlaps(eph)) return {};
    std::error_code ec;
    auto reserved = reserved_ports::read(ec).value_or(port_bitmap{});
    reserved.remove(kernel_owned());
    reserved |= wanted_ports(live, stored, &block);
    std::uint32_t remaining = 0;
    return reserved_ports::check_free_share(reserved, eph, reserved_ports::required_free_share(), remaining);
  }

  std::vector<linux_store::entry> load_store(std::error_code& ec) {
    auto stored = linux_store::load(ec);
    store_damaged_ = static_cast<bool>(ec);
    return stored;
  }
  std::vector<linux_store::entry> load_store() {
    std::error_code ignored; // recorded in store_damaged_
    return load_store(ignored);
  }

  static std::string owned_name() { return "kernel-owned." + std::to_string(linux_files::network_namespace_id()); }

  std::string dir_;
  unique_fd dir_fd_; // the folder, opened once
  bool store_damaged_ = false; // the last load of the persistent store failed
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

std::string linux_registry_scope() {
  std::string reason;
  const auto r = linux_registry_instance(reason);
  if (!r) return "no registry: " + reason;
  if (::geteuid() == 0) return "root's registry " + r->directory() + " (root's processes)";
  return "this user's processes only (per-user registry " + r->directory() +
         "; other users' processes are not excluded)";
}

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
