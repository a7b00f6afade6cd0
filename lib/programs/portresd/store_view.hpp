// portresd's view of the persistent store (the store itself, and the rules
// for adding to it, are linux_store's, shared with the per-user registry):
// its blocks as bitmaps, reloaded when the file changes (a stat at most
// every 100 ms notices an edit by hand).
#ifndef PORTRES_PROGRAMS_PORTRESD_STORE_VIEW_HPP
#define PORTRES_PROGRAMS_PORTRESD_STORE_VIEW_HPP

#include "core/port_bitmap.hpp"
#include "linux/persistent_store.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace portres::portresd {

class store_view {
public:
  /// Reads the store now; false (and `problem`) when it cannot be read: then
  /// its blocks are unknown (damaged() says so) until it can.
  bool load(std::string& problem);
  /// Reloads when the file changed since the last look (`now`: look now,
  /// else at most every 100 ms).
  void refresh(bool now = false);
  /// Replaces the view after a change the daemon made itself.
  void set(std::vector<detail::linux_store::entry> entries);

  const std::vector<detail::linux_store::entry>& entries() const { return entries_; }
  const detail::port_bitmap& ports(protocol p) const { return ports_[p == protocol::tcp ? 0 : 1]; }
  detail::port_bitmap all_ports() const;
  /// The last load failed: persistent blocks are unknown.
  bool damaged() const { return damaged_; }
  /// Changes whenever the entries may have (for caches of what depends on them).
  std::uint64_t version() const { return version_; }

private:
  std::vector<detail::linux_store::entry> entries_;
  detail::port_bitmap ports_[2];
  std::optional<std::int64_t> stamp_;
  std::chrono::steady_clock::time_point checked_{};
  bool damaged_ = false;
  std::uint64_t version_ = 0;
};

} // namespace portres::portresd

#endif
