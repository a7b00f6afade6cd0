// portresd's side of kernel enforcement: its share of ip_local_reserved_ports
// (reserved_ports_owner, the implementation the per-user registry uses too),
// a copy of the list for placement, and one write per turn of the loop for
// every grant and release of that turn, whose replies wait for it (a grant
// the kernel does not enforce is answered with the failure, never OK).
#ifndef PORTRES_PROGRAMS_PORTRESD_KERNEL_VIEW_HPP
#define PORTRES_PROGRAMS_PORTRESD_KERNEL_VIEW_HPP

#include "linux/reserved_ports_owner.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <system_error>

namespace portres::portresd {

class kernel_view {
public:
  /// `folder`: the namespace folder (the daemon's record lives there).
  explicit kernel_view(int folder) : owner_(folder, true) {}

  /// At start: what a predecessor recorded and the kernel still lists is
  /// ours to remove (its clients' grants died with it). Returns what to log.
  std::string reclaim();

  /// The list as read in this turn of the loop (`fresh`), or a copy at most
  /// 100 ms old; null when there is no list to read here.
  const detail::port_bitmap* list(bool fresh);
  /// The entries of list(fresh) we did not add (kept with the copy).
  const detail::port_bitmap* foreign(bool fresh);
  /// A new turn: the next fresh list is read again.
  void new_turn() { read_this_turn_ = false; }
  const detail::reserved_ports_owner& owner() const { return owner_; }

  /// A grant or release of this turn changes what the list must hold.
  void touch() { dirty_ = true; }
  bool dirty() const { return dirty_; }
  /// Writes the list if this turn changed it (or `force`): ok, or
  /// linux_error::enforcement_failed with `why`.
  std::error_code commit(const detail::port_bitmap& wanted, std::string& why, bool force = false);

private:
  detail::reserved_ports_owner owner_;
  std::optional<detail::port_bitmap> copy_;
  std::optional<detail::port_bitmap> foreign_; // of copy_, when asked since it changed
  std::chrono::steady_clock::time_point read_at_{};
  bool dirty_ = false;
  bool read_this_turn_ = false;
};

} // namespace portres::portresd

#endif
