// The ports of one reserved block and which of them are free to hand out,
// under a selection policy. Not thread-safe; the owner locks.
#ifndef PORTRES_SRC_CORE_PORT_BLOCK_HPP
#define PORTRES_SRC_CORE_PORT_BLOCK_HPP

#include "platform.hpp"
#include "portres/types.hpp"

#include <cstdint>
#include <deque>
#include <optional>
#include <random>
#include <vector>

namespace portres::detail {

class port_block {
public:
  /// @pre `range` is specific and valid.
  explicit port_block(port_range range, port_policy policy = port_policy::sequential);

  port_range range() const noexcept { return range_; }
  port_policy policy() const noexcept { return policy_; }
  void set_policy(port_policy policy);

  /// Takes a free port by the policy; nullopt when none is free.
  std::optional<std::uint16_t> take();
  /// Returns a taken port to the free set (e.g. its bind failed for our own reasons).
  void give_back(std::uint16_t port);
  /// Makes every taken port a candidate again, oldest hand-out first. Whether
  /// its socket let it go is learnt by binding it: asking the kernel which
  /// ports are held costs a walk of its whole socket hash (milliseconds),
  /// a failed bind about a microsecond. Returns how many came back.
  std::size_t reclaim_all();

  std::size_t free_count() const noexcept { return free_count_; }

private:
  std::uint32_t offset(std::uint16_t port) const noexcept { return port - range_.first(); }
  std::uint16_t port_at(std::uint32_t offset) const noexcept;
  void remove_from_order(std::uint32_t offset);
  void rebuild_order();

  port_range range_;
  port_policy policy_;
  std::vector<bool> free_;          // by offset
  std::vector<std::uint64_t> taken_at_; // by offset: take() sequence number, for reclaim order
  std::uint64_t takes_ = 0;
  std::size_t free_count_ = 0;
  std::uint32_t cursor_ = 0;        // sequential: where the next search starts
  std::deque<std::uint32_t> lru_;   // lru: free offsets, least recently freed first
  std::vector<std::uint32_t> bag_;  // random: free offsets
  std::vector<std::uint32_t> slot_; // random: index of each offset in bag_
  std::minstd_rand rng_;
};

} // namespace portres::detail

#endif
