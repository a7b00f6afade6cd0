// One owner's share of ip_local_reserved_ports: the per-user registry of root
// (a folder of records) or portresd. The one implementation of kernel
// enforcement both modes use:
// - the record of the entries this owner added (kernel-owned.<netns> in its
//   private folder), so the entries it did not add (an administrator's,
//   another owner's) are kept and treated as occupied, and a successor after
//   a crash knows what to remove;
// - sync: the list made (entries others added) | (what the owner wants),
//   under the namespace's writers' lock, recorded as a superset before the
//   write and exactly after, and read back. When any step fails the caller
//   is told (and fails its grant): the list then holds what the owner
//   believes, or the owner knows it may not.
#ifndef PORTRES_SRC_LINUX_RESERVED_PORTS_OWNER_HPP
#define PORTRES_SRC_LINUX_RESERVED_PORTS_OWNER_HPP

#include "core/port_bitmap.hpp"
#include "linux/reserved_ports.hpp"
#include "linux/state_files.hpp"
#include "portres/types.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <system_error>

namespace portres::detail {

class reserved_ports_owner {
public:
  /// `folder`: the owner's private folder (a descriptor that outlives this);
  /// `keep_open`: read the list through a descriptor kept open (the daemon,
  /// which never leaves its network namespace; a descriptor reads the list
  /// of the namespace it was opened in).
  reserved_ports_owner(int folder, bool keep_open) : folder_(folder), keep_open_(keep_open) {}

  /// Reads the record again (other processes of the same registry change
  /// it); a damaged or unreadable one is named in `problem` and counts as
  /// owning nothing (the entries stay, as someone else's: the safe side).
  const port_bitmap& load(std::string* problem = nullptr);
  const port_bitmap& owned() const noexcept { return owned_; }

  /// The kernel list now.
  std::optional<port_bitmap> read_list(std::error_code& ec) {
    return keep_open_ ? reader_.read(ec) : reserved_ports::read(ec);
  }

  /// The entries of `list` this owner did not add.
  port_bitmap foreign(const port_bitmap& list) const;

  /// error::ephemeral_starved when the list as it would be with `wanted`
  /// plus `block` besides the `foreign` entries leaves less than the
  /// required share of `ephemeral` free; `remaining` is what would be left.
  static std::error_code check_share(const port_bitmap& foreign, const port_bitmap& wanted, port_range block,
                                     port_range ephemeral, std::uint32_t& remaining);

  /// Makes the list (entries others added) | `wanted` (see above). Returns
  /// linux_error::enforcement_failed with `why` in words when the writers'
  /// lock, the record or the list could not be used; `written` is the list
  /// as written (on success).
  std::error_code sync(const port_bitmap& wanted, std::string& why, port_bitmap* written = nullptr);

private:
  std::error_code lock_writers(std::string& why);
  std::error_code record(const port_bitmap& ports);

  int folder_;
  bool keep_open_;
  port_bitmap owned_;
  std::optional<port_bitmap> recorded_; // what the record file says, when known
  reserved_ports::reader reader_;
  linux_files::unique_fd writers_lock_;
  int lock_pid_ = 0; // the process that opened writers_lock_ (flock is per open file)
};

} // namespace portres::detail

#endif
