#include "core/destination_ports.hpp"

#include "portres/error.hpp"

#include <gsl/gsl>

#include <bit>

namespace portres::detail {
namespace {
// A tracked socket found gone may have left its connection closing (FIN_WAIT):
// its port rests towards the peer this long before it is preferred again.
constexpr std::chrono::seconds reclaimed_rest{1};
constexpr std::uint64_t sweep_every = 1024;

bool test(const std::vector<std::uint64_t>& bits, std::uint32_t i) noexcept {
  return i / 64 < bits.size() && (bits[i / 64] >> (i % 64) & 1) != 0;
}
void assign(std::vector<std::uint64_t>& bits, std::uint32_t i, bool on) noexcept {
  const auto bit = std::uint64_t{1} << (i % 64);
  if (on) {
    bits[i / 64] |= bit;
  } else {
    bits[i / 64] &= ~bit;
  }
}
} // namespace

std::uint16_t destination_ports::port_at(std::uint32_t offset) const noexcept {
  return gsl::narrow_cast<std::uint16_t>(range_.first() + offset);
}

destination_ports::dest_state& destination_ports::state_of(const destination& d) {
  auto& st = dests_[d];
  if (st.used.empty()) st.used.assign(words(), 0);
  return st;
}

void destination_ports::promote(dest_state& st, clock::time_point now) {
  while (!st.rests.empty() && st.rests.front().ready_at <= now) {
    assign(st.resting, st.rests.front().offset, false);
    st.rests.pop_front();
  }
}

std::optional<std::uint32_t> destination_ports::scan(dest_state& st, port_policy policy) {
  // Ports shared with others, not used and not resting towards this
  // destination: a word at a time from the destination's cursor, wrapping.
  const auto n = range_.count();
  const auto count = gsl::narrow_cast<std::uint32_t>(words());
  const auto candidates = [&](std::uint32_t w) {
    return shared_[w] & ~st.used[w] & (st.resting.empty() ? ~std::uint64_t{0} : ~st.resting[w]);
  };
  if (policy == port_policy::random && !seeded_) {
    rng_.seed(std::random_device{}());
    seeded_ = true;
  }
  const std::uint32_t start = policy == port_policy::random ? static_cast<std::uint32_t>(rng_() % n) : st.cursor % n;
  std::uint32_t w = start / 64;
  std::uint64_t word = candidates(w) & (~std::uint64_t{0} << (start % 64));
  for (std::uint32_t seen = 0; word == 0 && seen <= count; ++seen) {
    w = (w + 1) % count;
    word = candidates(w);
  }
  if (word == 0) return std::nullopt;
  const std::uint32_t chosen = w * 64 + static_cast<std::uint32_t>(std::countr_zero(word));
  st.cursor = (chosen + 1) % n;
  return chosen;
}

std::optional<destination_ports::choice> destination_ports::choose(port_block& block, const destination& d,
                                                                   clock::time_point now) {
  auto& st = state_of(d);
  promote(st, now);
  if (shared_count_ > st.live) {
    if (const auto off = scan(st, block.policy())) return choice{port_at(*off), false};
  }
  if (const auto port = block.take(now)) return choice{*port, true};
  // Only ports that rest towards `d` are left: the one resting longest,
  // if it still carries connections elsewhere (else the block has it back).
  while (!st.rests.empty()) {
    const auto off = st.rests.front().offset;
    assign(st.resting, off, false);
    st.rests.pop_front();
    if (uses_[off] > 0 && !test(st.used, off)) return choice{port_at(off), false};
  }
  return std::nullopt;
}

void destination_ports::add(port_block& block, const destination& d, std::uint16_t port, bool fresh,
                            const tracked_socket* tracked) {
  Expects(range_.contains(port));
  auto& st = state_of(d);
  const auto off = offset(port);
  if (test(st.used, off)) return;
  if (uses_.empty()) {
    uses_.assign(range_.count(), 0);
    shared_.assign(words(), 0);
  }
  if (fresh) block.mark_owned(port);
  if (uses_[off]++ == 0) {
    assign(shared_, off, true);
    ++shared_count_;
  }
  assign(st.used, off, true);
  ++st.live;
  ++by_source_[d.source];
  if (tracked) st.tracked[off] = *tracked;
}

void destination_ports::remove(port_block& block, const destination& d, std::uint16_t port,
                               clock::time_point ready_at) {
  const auto it = dests_.find(d);
  if (it == dests_.end() || !range_.contains(port)) return;
  auto& st = it->second;
  const auto off = offset(port);
  if (!test(st.used, off)) return;
  assign(st.used, off, false);
  --st.live;
  st.tracked.erase(off);
  if (const auto src = by_source_.find(d.source); src != by_source_.end() && --src->second == 0) by_source_.erase(src);
  if (--uses_[off] == 0) {
    assign(shared_, off, false);
    --shared_count_;
    block.give_back(port, ready_at);
  } else {
    // Its connection towards `d` may still be closing; towards others the port is fine.
    if (st.resting.empty()) st.resting.assign(words(), 0);
    assign(st.resting, off, true);
    st.rests.push_back({off, ready_at});
  }
  if (st.live == 0 && st.rests.empty()) dests_.erase(it);
  if (++removals_ % sweep_every == 0) sweep(clock::now());
}

void destination_ports::sweep(clock::time_point now) {
  // Destinations without connections whose rests are over hold nothing.
  std::erase_if(dests_, [now](const auto& entry) {
    const auto& st = entry.second;
    return st.live == 0 && (st.rests.empty() || st.rests.back().ready_at <= now);
  });
}

void destination_ports::track(const destination& d, std::uint16_t port, tracked_socket s) {
  const auto it = dests_.find(d);
  if (it == dests_.end() || !range_.contains(port) || !test(it->second.used, offset(port))) return;
  it->second.tracked[offset(port)] = s;
}

std::size_t destination_ports::reclaim(port_block& block, const destination* d, const alive_fn& alive,
                                       clock::time_point now) {
  std::vector<std::pair<destination, std::uint16_t>> gone;
  const auto visit = [&](const destination& key, dest_state& st) {
    for (const auto& [off, socket] : st.tracked) {
      if (!alive(socket, port_at(off))) gone.emplace_back(key, port_at(off));
    }
  };
  if (d) {
    const auto it = dests_.find(*d);
    if (it == dests_.end()) return 0;
    visit(*d, it->second);
  } else {
    for (auto& [key, st] : dests_) visit(key, st);
  }
  for (const auto& [key, port] : gone) remove(block, key, port, now + reclaimed_rest);
  return gone.size();
}

destination_headroom destination_ports::headroom(const port_block& block, const destination& d) const {
  destination_headroom h;
  const auto it = dests_.find(d);
  h.live = it == dests_.end() ? 0 : it->second.live;
  // Free ports, plus ports carrying connections elsewhere only (resting ones count: they are used last).
  h.free_ports = block.free_count() + shared_count_ - h.live;
  return h;
}

std::size_t destination_ports::live_from(const asio::ip::address& source) const {
  const auto it = by_source_.find(source);
  return it == by_source_.end() ? 0 : it->second;
}

std::string endpoint_text(const asio::ip::address& peer, std::uint16_t peer_port) {
  // Built by appending: GCC 12's -Wrestrict misfires on "literal" +
  // std::string (GCC PR 105329).
  std::string text;
  if (peer.is_v6()) text += '[';
  text += peer.to_string();
  if (peer.is_v6()) text += ']';
  text += ':';
  text += std::to_string(peer_port);
  return text;
}

std::error_code towards_peer(std::error_code ec, const asio::ip::address& peer, std::uint16_t peer_port) {
  return exhausted_towards(ec, endpoint_text(peer, peer_port));
}

} // namespace portres::detail
