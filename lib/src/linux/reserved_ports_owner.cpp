#include "linux/reserved_ports_owner.hpp"

#include "linux/broker_presence.hpp"
#include "portres/linux_error.hpp"

#include <gsl/gsl>

#include <cerrno>
#include <chrono>
#include <thread>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace portres::detail {
namespace {

constexpr const char* record_kind = "kernel-owned";

// Another root writer holds the writers' lock for one read-modify-write
// (about a millisecond); a holder stopped or stuck must not hang us.
constexpr auto lock_patience = std::chrono::seconds(1);

} // namespace

const port_bitmap& reserved_ports_owner::load(std::string* problem) {
  if (problem) problem->clear();
  const auto name = broker_presence::name_of(record_kind);
  std::error_code ec;
  const auto text = linux_files::read_file_at(folder_, name, ec);
  if (ec && problem) *problem = name + ": " + ec.message();
  auto parsed = linux_files::parse_port_list(text.value_or(""));
  if (!parsed && problem && problem->empty()) *problem = name + ": not a port list";
  owned_ = parsed.value_or(port_bitmap{});
  if (parsed && !ec) {
    recorded_ = owned_;
  } else {
    recorded_.reset();
  }
  return owned_;
}

port_bitmap reserved_ports_owner::foreign(const port_bitmap& list) const {
  port_bitmap out = list;
  out.remove(owned_);
  return out;
}

std::error_code reserved_ports_owner::check_share(const port_bitmap& foreign, const port_bitmap& wanted,
                                                  port_range block, port_range ephemeral, std::uint32_t& remaining) {
  port_bitmap reserved = foreign;
  reserved |= wanted;
  reserved.set_range(block.first(), block.last());
  // Counted inside the ephemeral range only: the kernel allocates nowhere else.
  return reserved_ports::check_free_share(reserved, ephemeral, reserved_ports::required_free_share(), remaining);
}

std::error_code reserved_ports_owner::record(const port_bitmap& ports) {
  if (recorded_ && *recorded_ == ports) return {};
  // Replaced atomically, not synced to disk: the kernel list it describes
  // does not survive a reboot either.
  const auto ec = linux_files::write_file_atomic_at(folder_, broker_presence::name_of(record_kind),
                                                    linux_files::format_port_list(ports) + "\n", 0600, false);
  if (ec) {
    recorded_.reset(); // unknown now: the next record is written whatever it says
  } else {
    recorded_ = ports;
  }
  return ec;
}

std::error_code reserved_ports_owner::lock_writers(std::string& why) {
  std::error_code ec;
  if (!writers_lock_ || lock_pid_ != ::getpid()) {
    // A forked child shares its parent's open file (and so its flock): its own.
    auto dir = broker_presence::open_folder(true, ec);
    if (dir) writers_lock_ = linux_files::open_at(dir.get(), broker_presence::name_of("kernel-lock"), O_RDWR | O_CREAT, ec);
    if (ec) {
      writers_lock_ = {};
      why = "the writers' lock in " + broker_presence::folder() + ": " + ec.message();
      return ec;
    }
    lock_pid_ = ::getpid();
  }
  const auto deadline = std::chrono::steady_clock::now() + lock_patience;
  auto pause = std::chrono::microseconds(50);
  while ((ec = linux_files::lock_exclusive(writers_lock_.get(), blocking::forbidden))) {
    if (ec != std::errc::operation_would_block || std::chrono::steady_clock::now() > deadline) {
      why = "the writers' lock in " + broker_presence::folder() + ": " +
            (ec == std::errc::operation_would_block ? std::string("held by another writer for over a second")
                                                    : ec.message());
      return ec;
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(20000));
  }
  return {};
}

std::error_code reserved_ports_owner::sync(const port_bitmap& wanted, std::string& why, port_bitmap* written) {
  why.clear();
  const auto failed = [&](const std::string& what, std::error_code ec) {
    why = what + (what.find(ec.message()) == std::string::npos ? ": " + ec.message() : std::string());
    return std::error_code(linux_error::enforcement_failed);
  };
  if (auto ec = lock_writers(why)) return failed(why, ec);
  const auto unlock = gsl::finally([this] { ::flock(writers_lock_.get(), LOCK_UN); });
  std::error_code ec;
  const auto current = read_list(ec);
  if (!current) return failed("reading the kernel list", ec);
  // Recorded before the list changes, as a superset: killed in between, we
  // leave no entry the next owner would take for someone else's.
  port_bitmap may_own = owned_;
  may_own |= wanted;
  if ((ec = record(may_own))) return failed("recording the kernel entries portres adds", ec);
  owned_ = may_own;
  const auto foreign_now = foreign(*current);
  port_bitmap next = foreign_now;
  next |= wanted;
  std::string detail;
  if ((ec = reserved_ports::write_exact(next, *current, detail))) return failed(detail, ec);
  owned_ = wanted;
  owned_.remove(foreign_now); // an entry someone else added stays theirs
  // Failing here leaves the superset recorded: safe, and put right next time.
  record(owned_);
  if (written) *written = next;
  return {};
}

} // namespace portres::detail
