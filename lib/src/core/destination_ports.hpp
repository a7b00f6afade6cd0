// TCP port sharing: which ports of a block carry a connection towards which
// destination (source address, peer address and port). A port carries one
// connection per destination, as the kernel needs only the 4-tuple to be
// unique. It works beside the block's port_block: a port in shared use is
// owned there (only this table gives it back), and fresh ports come from it
// by the block's policy. Not thread-safe; the owner locks.
#ifndef PORTRES_SRC_CORE_DESTINATION_PORTS_HPP
#define PORTRES_SRC_CORE_DESTINATION_PORTS_HPP

#include "core/port_block.hpp"
#include "portres/detail/destination.hpp"
#include "portres/detail/runtime_state.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <system_error>
#include <unordered_map>
#include <vector>

namespace portres::detail {

class destination_ports {
public:
  using clock = std::chrono::steady_clock;
  /// A socket whose close the library does not see (portres::bind towards a
  /// peer): its use ends when `alive` says the socket is gone.
  struct tracked_socket {
    native_socket handle;
    std::uint64_t key;
  };
  using alive_fn = std::function<bool(const tracked_socket&, std::uint16_t port)>;
  struct choice {
    std::uint16_t port;
    bool fresh; ///< taken from the block just now: add() it after its bind, or give it back there
  };

  explicit destination_ports(port_range range) : range_(range) {}

  /// A port free towards `d`: first one that carries connections to other
  /// destinations already (free ports stay free for exclusive use), then a
  /// fresh one from `block`, then the one resting towards `d` longest.
  std::optional<choice> choose(port_block& block, const destination& d, clock::time_point now);
  /// Records a use of `port` towards `d` once its bind succeeded (a fresh
  /// port becomes owned in `block`); also for a port `block` already holds
  /// owned for one socket that now connects towards `d` (fresh false).
  void add(port_block& block, const destination& d, std::uint16_t port, bool fresh, const tracked_socket* tracked);
  /// A use ended (its socket closed). With no use left the port goes back to
  /// `block`, resting until `ready_at`; otherwise it rests towards `d` alone.
  void remove(port_block& block, const destination& d, std::uint16_t port, clock::time_point ready_at);
  /// A use whose socket went to its user for good: tracked from now on.
  void track(const destination& d, std::uint16_t port, tracked_socket s);
  /// Ends the tracked uses towards `d` (null: every destination) whose socket
  /// is gone; returns how many. One system call per tracked use: asked only
  /// when the destination (or the block) has no port left.
  std::size_t reclaim(port_block& block, const destination* d, const alive_fn& alive, clock::time_point now);

  destination_headroom headroom(const port_block& block, const destination& d) const;
  /// Live uses leaving from `source` (any destination).
  std::size_t live_from(const asio::ip::address& source) const;
  std::size_t shared_ports() const noexcept { return shared_count_; }

private:
  struct rest {
    std::uint32_t offset;
    clock::time_point ready_at;
  };
  struct dest_state {
    std::vector<std::uint64_t> used;    // bit per offset: a live use towards this destination
    std::vector<std::uint64_t> resting; // bit per offset: closed towards it lately (empty until the first)
    std::deque<rest> rests;             // in order of return
    std::unordered_map<std::uint32_t, tracked_socket> tracked;
    std::size_t live = 0;
    std::uint32_t cursor = 0;
  };

  std::uint32_t offset(std::uint16_t port) const noexcept { return port - range_.first(); }
  std::uint16_t port_at(std::uint32_t offset) const noexcept;
  std::size_t words() const noexcept { return (range_.count() + 63) / 64; }
  dest_state& state_of(const destination& d);
  void promote(dest_state& st, clock::time_point now);
  std::optional<std::uint32_t> scan(dest_state& st, port_policy policy);
  void sweep(clock::time_point now);

  port_range range_;
  std::unordered_map<destination, dest_state, destination_hash> dests_;
  std::vector<std::uint16_t> uses_;   // by offset: live uses over every destination (empty until the first)
  std::vector<std::uint64_t> shared_; // bit per offset: uses_ > 0
  std::size_t shared_count_ = 0;
  std::unordered_map<asio::ip::address, std::size_t> by_source_;
  std::uint64_t removals_ = 0;
  std::minstd_rand rng_;   // random policy: where a scan starts (seeded at first use)
  bool seeded_ = false;
};

/// `peer` as error messages write it: "address:port", "[v6 address]:port".
std::string endpoint_text(const asio::ip::address& peer, std::uint16_t peer_port);

/// `ec` told towards a peer: a block's exhaustion (block_exhausted_error)
/// becomes destination_exhausted_error, which names the peer too; any other
/// error is kept. Where ports are exclusive, a connect fails as a get does,
/// and its error still says which peer it was for.
std::error_code towards_peer(std::error_code ec, const asio::ip::address& peer, std::uint16_t peer_port);

} // namespace portres::detail

#endif
