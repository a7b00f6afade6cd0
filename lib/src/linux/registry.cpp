#include "linux/registry.hpp"

#include "core/block_placement.hpp"
#include "linux/broker_presence.hpp"
#include "linux/registry_format.hpp"
#include "linux/registry_scan.hpp"
#include "linux/reserved_ports_owner.hpp"
#include "linux/state_files.hpp"
#include "platform.hpp"
#include "portres/linux_error.hpp"

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

using linux_files::unique_fd;
using live_entry = live_record;

// A portresd serving this namespace grants blocks the registry cannot see
// (outside the ephemeral range they are in no kernel list): grant nothing
// rather than grant twice. Asked through its presence file, which never
// waits on anyone (its socket's name can be held by anyone).
std::error_code daemon_in_charge() {
  return broker_presence::daemon_serves() ? std::error_code(linux_error::broker_started) : std::error_code();
}

std::string token_hex(reservation_token t) { return to_string(t).substr(2); }

std::string entry_name(protocol p, reservation_token t) {
  return std::string("r-") + to_string(p) + "-" + token_hex(t);
}

std::string default_directory(std::string& reason) {
  if (const char* dir = std::getenv("PORTRES_RUNTIME_DIR"); dir && *dir) return dir;
  if (::geteuid() == 0) return "/run/portres";
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg && *xdg) return std::string(xdg) + "/portres";
  reason = "no registry folder: XDG_RUNTIME_DIR is unset (set it, or PORTRES_RUNTIME_DIR, to a private folder)";
  return {};
}

// Whoever may rename a folder on the way to the registry can swap the
// registry for another while processes hold the old one open (two
// registries, one block granted twice): every ancestor must be root's or
// ours, and one others may write must be sticky (/tmp: then only we may
// rename what is ours in it).
std::error_code check_ancestors(const std::string& dir) {
  const auto slash = dir.find_last_of('/');
  const std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : dir.substr(0, slash);
  char* resolved = ::realpath(parent.c_str(), nullptr);
  if (resolved == nullptr) return {errno, std::system_category()};
  std::string path = resolved;
  std::free(resolved);
  while (true) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return {errno, std::system_category()};
    const bool ours = st.st_uid == 0 || st.st_uid == ::geteuid();
    const bool others_write = (st.st_mode & (S_IWGRP | S_IWOTH)) != 0;
    if (!ours || (others_write && (st.st_mode & S_ISVTX) == 0)) return error::unsafe_path;
    if (path == "/") return {};
    const auto cut = path.find_last_of('/');
    path = cut == 0 ? "/" : path.substr(0, cut);
  }
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
      if ((ec = check_ancestors(dir_))) return ec;
      dir_fd_ = linux_files::open_private_dir(dir_, ec);
      if (ec) return ec;
      kernel_ = std::make_unique<reserved_ports_owner>(dir_fd_.get(), false);
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
    if ((ec = daemon_in_charge())) return nullptr;
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
    // Entries of the kernel list this registry did not add (portresd's
    // grants, an administrator's): reserved for someone else, never granted.
    const auto list = kernel_list();
    if (list) foreign_of(*list).for_each_run(0, port_range::max_port, [&](std::uint32_t first, std::uint32_t last) {
      occupied.emplace_back(gsl::narrow_cast<std::uint16_t>(first), last - first + 1);
    });
    const auto held = held_ports_for(p, request, ec);
    if (ec) return nullptr;
    const auto ephemeral = platform::ephemeral_range();
    granted = place_block(request, placement_, ephemeral, occupied, held, ec);
    if (ec) return nullptr;
    if (list && enforcing_) {
      std::uint32_t remaining = 0;
      if ((ec = kernel_->check_share(kernel_->foreign(*list), wanted_ports(live, stored), granted, ephemeral, remaining)))
        return nullptr;
    }
    live.push_back({p, granted, token, platform::process_id()});
    const bool kernel_changes = enforcing_ && !(wanted_ports(live, stored) == kernel_->owned());
    // Writing the sysctl may wait: leave that to the blocking pool.
    if (b == blocking::forbidden && kernel_changes) {
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
    // A grant the kernel does not enforce is no grant: taken back.
    if (kernel_changes && (ec = sync_kernel(live, stored))) {
      ::unlinkat(dir_fd_.get(), name.c_str(), 0);
      return nullptr;
    }
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
    if ((ec = daemon_in_charge())) return {}; // the daemon's blocks are invisible here
    guard g(*this, blocking::allowed, ec);
    if (ec) return {};
    const auto live = scan(ec);
    if (ec) return {};
    std::vector<port_range> live_ranges;
    for (const auto& l : live) {
      if (l.proto == e.proto) live_ranges.push_back(l.range);
    }
    const auto list = kernel_list();
    const auto after = linux_store::add(e, live_ranges, [&](const std::vector<linux_store::entry>& stored) {
      std::uint32_t remaining = 0;
      if (!list || !enforcing_) return std::error_code();
      return kernel_->check_share(kernel_->foreign(*list), wanted_ports(live, stored), e.range,
                                  platform::ephemeral_range(), remaining);
    }, ec);
    if (ec) return {};
    if (enforcing_ && (ec = sync_kernel(live, after))) {
      std::error_code undo; // not enforced: not created
      const auto before = linux_store::remove(e, undo);
      if (!undo) sync_kernel(live, before);
      return {};
    }
    return linux_store::token_of(e);
  }

  void remove_persistent(const linux_store::entry& e, std::error_code& ec) {
    guard g(*this, blocking::allowed, ec);
    if (ec) return;
    const auto live = scan(ec);
    if (ec) return;
    const auto after = linux_store::remove(e, ec);
    if (ec) return;
    // Removed from the store; an entry the kernel keeps is ours, and goes at
    // the next change that succeeds.
    if (enforcing_) sync_kernel(live, after);
  }

  void apply(std::error_code& ec) {
    guard g(*this, blocking::allowed, ec);
    if (ec) return;
    const auto live = scan(ec);
    if (ec) return;
    const auto stored = load_store(ec);
    if (ec) return;
    ec = enforcing_ ? sync_kernel(live, stored) : std::error_code(error::privilege_required);
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
    // Released either way; an entry the kernel keeps goes at the next change.
    if (!scan_ec && enforcing_) sync_kernel(live, stored);
  }

  std::vector<live_entry> scan(std::error_code& ec, bool remove_abandoned = true) {
    return scan_registry(dir_fd_.get(), remove_abandoned, ec);
  }

  // The ports portres wants the kernel to keep from automatic allocation:
  // every live and persistent block, where it meets the ephemeral range.
  port_bitmap wanted_ports(const std::vector<live_entry>& live, const std::vector<linux_store::entry>& stored) {
    port_bitmap blocks;
    for (const auto& e : live) blocks.set_range(e.range.first(), e.range.last());
    for (const auto& e : stored) blocks.set_range(e.range.first(), e.range.last());
    auto wanted = reserved_ports::to_enforce(blocks, platform::ephemeral_range());
    if (store_damaged_) wanted |= kernel_->owned(); // persistent blocks unknown: remove nothing
    return wanted;
  }

  // The kernel list, with this registry's record of what it added read
  // afresh (the registry's other processes change it); nullopt when there
  // is no list to read.
  std::optional<port_bitmap> kernel_list() {
    std::error_code ec;
    if (enforcing_) kernel_->load();
    return kernel_->read_list(ec);
  }

  port_bitmap foreign_of(const port_bitmap& list) const { return enforcing_ ? kernel_->foreign(list) : list; }

  // (entries portres did not add) | (what it wants now), or the failure.
  std::error_code sync_kernel(const std::vector<live_entry>& live, const std::vector<linux_store::entry>& stored) {
    std::string why;
    kernel_->load();
    return kernel_->sync(wanted_ports(live, stored), why);
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

  std::string dir_;
  unique_fd dir_fd_; // the folder, opened once
  std::unique_ptr<reserved_ports_owner> kernel_; // this registry's share of the kernel list
  const bool enforcing_ = [] { // root in this namespace: the registry keeps its share of the kernel list
    std::string reason;
    return reserved_ports::writable(reason);
  }();
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

bool kernel_enforcement_available(std::string& reason) { return reserved_ports::writable(reason); }

} // namespace portres::detail
