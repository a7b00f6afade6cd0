// gateway's figures for people watching it: the stats line (per upstream:
// connections open now and ports of the block still free towards it), and
// the summary at the end, as text or JSON.
#ifndef PORTRES_SAMPLES_GATEWAY_STATS_HPP
#define PORTRES_SAMPLES_GATEWAY_STATS_HPP

#include "gateway/relay.hpp"

#include <chrono>
#include <optional>
#include <string>

namespace gateway {

/// Ports of the pool's block still free towards `peer`; nullopt without a
/// pool (the kernel chooses, and does not say).
std::optional<std::size_t> free_ports(const portres::socket_pool<tcp>* pool, const tcp::endpoint& peer);

/// Prints a stats line: requests per second since the previous line, totals,
/// and per upstream live connections and free ports.
class stats_view {
public:
  explicit stats_view(const relay& r, const portres::socket_pool<tcp>* pool);
  void print();

private:
  const relay& relay_;
  const portres::socket_pool<tcp>* pool_;
  std::chrono::steady_clock::time_point start_, last_;
  std::uint64_t last_requests_ = 0;
};

/// The summary at the end; `block` names the pool's block (empty without a pool).
void print_summary(const counters& c, const portres::socket_pool<tcp>* pool, const portres::port_range* block, bool json);

} // namespace gateway

#endif
