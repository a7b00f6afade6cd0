// Small, careful file helpers for the registry and the persistent store:
// no symlinks followed, no world-writable folders, atomic replacement.
#ifndef PORTRES_SRC_LINUX_STATE_FILES_HPP
#define PORTRES_SRC_LINUX_STATE_FILES_HPP

#include "backend.hpp"
#include "core/port_bitmap.hpp"

#include <optional>
#include <string>
#include <system_error>
#include <vector>

namespace portres::detail::linux_files {

/// An open file descriptor, closed on destruction.
class unique_fd {
public:
  unique_fd() noexcept = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(o.release()) {}
  unique_fd& operator=(unique_fd&& o) noexcept;
  ~unique_fd();
  int get() const noexcept { return fd_; }
  int release() noexcept {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  explicit operator bool() const noexcept { return fd_ >= 0; }

private:
  int fd_ = -1;
};

/// Creates `path` (mode 0755 for root, else 0700) if missing and checks it:
/// a real directory, not a symlink, owned by us or root, not writable by
/// others. error::unsafe_path otherwise.
std::error_code ensure_private_dir(const std::string& path);

/// The same checks on an existing folder, without creating it; a missing
/// folder is fine (std::errc::no_such_file_or_directory is not reported).
std::error_code check_private_dir(const std::string& path);

/// Opens (creating) `path` without following symlinks.
unique_fd open_nofollow(const std::string& path, int flags, std::error_code& ec);

/// flock(LOCK_EX) on `fd`; with blocking::forbidden a held lock is
/// std::errc::operation_would_block instead of a wait.
std::error_code lock_exclusive(int fd, blocking b);
/// True when nobody holds an flock on the file (its holder died).
bool is_abandoned(const std::string& path);

/// Whole-file read (nofollow); nullopt when absent.
std::optional<std::string> read_file(const std::string& path, std::error_code& ec);

/// Opens the private folder `path` once (created 0700 if missing) with
/// O_DIRECTORY|O_NOFOLLOW and checks the descriptor: owned by us, no access
/// for group or others (a folder of ours with wider modes is narrowed).
/// Every later access goes through the descriptor (openat/unlinkat/linkat),
/// so swapping a parent for a symlink cannot redirect it.
unique_fd open_private_dir(const std::string& path, std::error_code& ec);
/// openat without following symlinks; new files are 0600.
unique_fd open_at(int dir, const std::string& name, int flags, std::error_code& ec);
/// An unnamed file in `dir` (O_TMPFILE), already flocked exclusively, so a
/// record can be written and then published locked by publish_at: no other
/// process ever sees it unlocked.
unique_fd create_locked_at(int dir, std::error_code& ec);
/// Gives the unnamed file `fd` the name `name` in `dir` (fails if it exists).
std::error_code publish_at(int fd, int dir, const std::string& name);
/// True when nobody holds an flock on dir/name (its holder died).
bool is_abandoned_at(int dir, const std::string& name);
std::optional<std::string> read_file_at(int dir, const std::string& name, std::error_code& ec);
/// An unnamed file in `dir` (O_TMPFILE with `flags`), mode `mode`.
unique_fd create_unnamed_at(int dir, int flags, unsigned mode, std::error_code& ec);
/// Names the unnamed file `fd` `name` in `dir`, replacing any file of that
/// name atomically (through a temporary name for an instant; leftovers
/// "name.tmp.*" of a kill are removed on the way: callers hold a lock that
/// serialises the writers of `name`). `durable`: fsync the file and folder.
std::error_code replace_at(int fd, int dir, const std::string& name, bool durable);
/// Replaces dir/name atomically with `content` (create_unnamed_at, replace_at).
std::error_code write_file_atomic_at(int dir, const std::string& name, const std::string& content,
                                     unsigned mode = 0600, bool durable = true);
/// The inode of this process' network namespace (/proc/self/ns/net): the
/// key of everything kept per namespace. 0 when unknown.
std::uint64_t network_namespace_id();
/// 64 bits from the OS (getrandom), never zero.
std::uint64_t os_random_u64();

/// "1000,2000-2010" <-> bitmap (the ip_local_reserved_ports format).
std::optional<port_bitmap> parse_port_list(const std::string& text);
std::string format_port_list(const port_bitmap& ports);
/// The same list cut into pieces of at most `max_bytes` at entry boundaries
/// (none for an empty list): each piece is a valid list of its own.
std::vector<std::string> format_port_list_pieces(const port_bitmap& ports, std::size_t max_bytes);

} // namespace portres::detail::linux_files

#endif
