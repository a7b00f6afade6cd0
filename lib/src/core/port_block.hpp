// The ports of one reserved block and which of them are free to hand out,
// under a selection policy. Not thread-safe; the owner locks.
#ifndef PORTRES_SRC_CORE_PORT_BLOCK_HPP
#define PORTRES_SRC_CORE_PORT_BLOCK_HPP

#include "platform.hpp"
#include "portres/types.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <random>
#include <vector>

namespace portres::detail {

class port_block {
public:
  using clock = std::chrono::steady_clock;

  /// @pre `range` is specific and valid.
  explicit port_block(port_range range, port_policy policy = port_policy::sequential);

  port_range range() const noexcept { return range_; }
  port_policy policy() const noexcept { return policy_; }
  void set_policy(port_policy policy);

  /// Takes a free port by the policy, preferring ports that are not resting;
  /// a resting port (oldest return first) only when no other is free;
  /// nullopt when none is free or resting.
  std::optional<std::uint16_t> take(clock::time_point now = clock::now());
  /// Returns a taken port to the free set, free for the policy at once (its
  /// bind failed for our own reasons, or its socket never carried a connection).
  void give_back(std::uint16_t port);
  /// Returns a taken port whose socket was just closed: its last connection
  /// may still be closing (FIN_WAIT), so it rests until `ready_at` while
  /// other ports are free. For lru, ports come back in order of return.
  void give_back(std::uint16_t port, clock::time_point ready_at);
  /// Marks a taken port as owned by a pool: only its return (give_back)
  /// frees it, never a reclaim (a bound, unconnected socket may be
  /// invisible to the kernel listing the reclaim trusts).
  void mark_owned(std::uint16_t port);
  /// An owned port whose socket went to its user for good: taken again, so a
  /// reclaim frees it once the kernel no longer holds it.
  void disown(std::uint16_t port);
  /// Makes every taken (not owned) port that `held` does not mark free again, oldest
  /// return first. Returns how many came back.
  std::size_t reclaim_unheld(const port_bitmap& held);

  /// Whether `port` is taken and not owned: handed out to a socket the
  /// library does not see close, or found held by an outside socket.
  bool reclaimable(std::uint16_t port) const noexcept {
    return range_.contains(port) && state_[offset(port)] == slot_state::taken;
  }

  std::size_t free_count() const noexcept { return free_count_ + resting_.size(); }
  std::size_t resting_count() const noexcept { return resting_.size(); }

private:
  enum class slot_state : std::uint8_t { taken, owned, free, resting };
  struct rest {
    std::uint32_t offset;
    clock::time_point ready_at;
  };

  std::uint32_t offset(std::uint16_t port) const noexcept { return port - range_.first(); }
  std::uint16_t port_at(std::uint32_t offset) const noexcept;
  void make_free(std::uint32_t offset);
  void set_free_bit(std::uint32_t offset, bool free) noexcept;
  void remove_from_order(std::uint32_t offset);
  void rebuild_order();
  std::optional<std::uint32_t> take_free();
  void promote_rested(clock::time_point now);

  port_range range_;
  port_policy policy_;
  std::vector<slot_state> state_;       // by offset
  std::vector<std::uint64_t> free_bits_; // sequential: a bit per free offset, for word-at-a-time search
  std::vector<std::uint64_t> returned_; // by offset: return sequence number (lru order)
  std::uint64_t returns_ = 0;
  std::size_t free_count_ = 0;          // slots in state free
  std::uint32_t cursor_ = 0;            // sequential: where the next search starts
  std::deque<std::uint32_t> lru_;       // lru: free offsets, least recently returned first
  std::deque<rest> resting_;            // resting offsets, in order of return
  std::vector<std::uint32_t> bag_;      // random: free offsets
  std::vector<std::uint32_t> slot_;     // random: index of each offset in bag_
  std::minstd_rand rng_;
};

} // namespace portres::detail

#endif
