// The taken ports of a block that may have come back without the library
// seeing it, and the few probes that find them when the block runs dry.
//
// portres::bind hands a port to a socket the library does not own, and never
// learns when that socket closes; the caller's close would not settle it
// anyway (a dup'ed or inherited descriptor, or TIME_WAIT, keeps the port
// held). Ports an outside binder held are taken too. Rather than list every
// socket of the namespace (milliseconds with 16,000 of them), a dry block
// probes a few candidates, each with one bind the kernel refuses while
// anything holds the port (platform::unheld_ports).
//
// Candidates live in two lists, as a generational collector keeps objects:
// `recent` (handed out and not probed since, newest first) and `held` (found
// held by a probe or a bind; the longest unprobed first). Each round draws
// from both in turn, so a churning caller's just-closed ports are found at
// once, a long-lived cohort beneath them is never walked, and ports that
// outlived a probe are checked again in turn. Not thread-safe; the owner locks.
#ifndef PORTRES_SRC_CORE_PORT_RECLAIM_HPP
#define PORTRES_SRC_CORE_PORT_RECLAIM_HPP

#include "core/port_block.hpp"
#include "portres/types.hpp"

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <system_error>
#include <vector>

namespace portres::detail {

class port_reclaim {
public:
  /// Bit i of the answer set: nothing holds ports[i] (at most 32 ports).
  using probe_fn = std::function<std::uint32_t(std::span<const std::uint16_t> ports, std::error_code& ec)>;
  /// Probes per round: a free port costs its probe a socket and a close, so
  /// a round stays a few binds long.
  static constexpr std::size_t probes_per_round = 4;
  /// A second round only when the first found nothing.
  static constexpr int rounds = 2;

  /// @pre `range` is specific and valid.
  explicit port_reclaim(port_range range) : range_(range) {}

  /// `port` was just handed out to a socket the library does not own.
  void handed_out(std::uint16_t port);
  /// `port` stays taken because something else holds it (a bind or the
  /// held-ports listing said so).
  void held(std::uint16_t port);
  /// Probes up to rounds x probes_per_round candidates that `ports` still
  /// has taken; gives each free one back to `ports`, the longest handed out
  /// first (the order lru hands them out again), and returns how many came
  /// back. A probe error leaves the candidates as they were (`ec` set).
  std::size_t probe(port_block& ports, const probe_fn& ask, std::error_code& ec);
  /// Drops candidates `ports` no longer has taken (freed by other means).
  void forget_free(const port_block& ports);

  std::size_t candidates() const noexcept { return lists_[recent].size + lists_[held_list].size; }

private:
  enum list_id : std::uint8_t { none, recent, held_list };
  static constexpr std::uint32_t nil = ~std::uint32_t{0};
  struct list {
    std::uint32_t head = nil;
    std::uint32_t tail = nil;
    std::size_t size = 0;
  };

  std::uint32_t offset(std::uint16_t port);
  void link_front(list_id l, std::uint32_t i) noexcept;
  void link_back(list_id l, std::uint32_t i) noexcept;
  void unlink(std::uint32_t i) noexcept;
  std::optional<std::uint32_t> pop_reclaimable(list_id l, const port_block& ports, std::size_t& skips);

  port_range range_;
  // Intrusive lists over the block's offsets (allocated on first use, so a
  // large block stays cheap to acquire): O(1) to add, move or drop a port.
  std::vector<std::uint32_t> next_, prev_;
  std::vector<list_id> in_;
  std::vector<std::uint32_t> handed_; // by offset: when it was handed out or found held (a count)
  std::uint32_t hand_outs_ = 0;
  std::array<list, 3> lists_{};
};

} // namespace portres::detail

#endif
