#include "core/port_block.hpp"

#include <gsl/gsl>

#include <algorithm>
#include <bit>

namespace portres::detail {
namespace {
constexpr std::uint32_t nowhere = ~std::uint32_t{0};
}

port_block::port_block(port_range range, port_policy policy)
    : range_(range), policy_(policy), state_(range.count(), slot_state::free), free_count_(range.count()) {
  Expects(!range.is_wildcard() && !range.validate());
  free_bits_.assign((state_.size() + 63) / 64, ~std::uint64_t{0});
  if (const auto tail = state_.size() % 64) free_bits_.back() = (std::uint64_t{1} << tail) - 1;
  rebuild_order();
}

std::uint16_t port_block::port_at(std::uint32_t offset) const noexcept {
  return gsl::narrow_cast<std::uint16_t>(range_.first() + offset);
}

void port_block::set_policy(port_policy policy) {
  if (policy == policy_) return;
  policy_ = policy;
  rebuild_order();
}

void port_block::rebuild_order() {
  lru_.clear();
  bag_.clear();
  slot_.clear();
  // Sequential needs no order of its own: acquiring a large block stays O(1) here.
  if (policy_ == port_policy::sequential) return;
  if (policy_ == port_policy::random) {
    slot_.assign(state_.size(), nowhere);
    rng_.seed(std::random_device{}()); // seeded only where randomness is used
  }
  std::vector<std::uint32_t> order;
  for (std::uint32_t i = 0; i < state_.size(); ++i) {
    if (state_[i] == slot_state::free) order.push_back(i);
  }
  if (policy_ == port_policy::lru && !returned_.empty()) {
    std::stable_sort(order.begin(), order.end(),
                     [this](std::uint32_t a, std::uint32_t b) { return returned_[a] < returned_[b]; });
  }
  for (const auto i : order) {
    if (policy_ == port_policy::lru) lru_.push_back(i);
    if (policy_ == port_policy::random) {
      slot_[i] = gsl::narrow_cast<std::uint32_t>(bag_.size());
      bag_.push_back(i);
    }
  }
}

std::optional<std::uint32_t> port_block::take_free() {
  if (free_count_ == 0) return std::nullopt;
  std::uint32_t chosen = 0;
  switch (policy_) {
  case port_policy::sequential: {
    // The first free offset at or after the cursor, wrapping: a word at a
    // time, so a nearly full block costs hundreds of reads, not a bit each.
    const auto n = gsl::narrow_cast<std::uint32_t>(state_.size());
    const auto words = gsl::narrow_cast<std::uint32_t>(free_bits_.size());
    std::uint32_t w = (cursor_ % n) / 64;
    std::uint64_t word = free_bits_[w] & (~std::uint64_t{0} << ((cursor_ % n) % 64));
    for (std::uint32_t seen = 0; word == 0 && seen <= words; ++seen) {
      w = (w + 1) % words;
      word = free_bits_[w];
    }
    chosen = w * 64 + static_cast<std::uint32_t>(std::countr_zero(word)); // word != 0: free_count_ > 0
    cursor_ = (chosen + 1) % n;
    break;
  }
  case port_policy::lru:
    chosen = lru_.front();
    lru_.pop_front();
    break;
  case port_policy::random: {
    std::uniform_int_distribution<std::size_t> pick(0, bag_.size() - 1);
    chosen = bag_[pick(rng_)];
    remove_from_order(chosen);
    break;
  }
  }
  return chosen;
}

void port_block::promote_rested(clock::time_point now) {
  // Rested long enough: free like any other, in order of return (for lru,
  // behind ports returned earlier, ahead of those returned later).
  while (!resting_.empty() && resting_.front().ready_at <= now) {
    const auto i = resting_.front().offset;
    resting_.pop_front();
    if (policy_ == port_policy::lru) {
      // Keep lru_ ordered by return number: ports returned after this one
      // without rest may already be queued.
      auto at = std::upper_bound(lru_.begin(), lru_.end(), i,
                                 [this](std::uint32_t a, std::uint32_t b) { return returned_[a] < returned_[b]; });
      state_[i] = slot_state::free;
      set_free_bit(i, true);
      ++free_count_;
      lru_.insert(at, i);
    } else {
      make_free(i);
    }
  }
}

std::optional<std::uint16_t> port_block::take(clock::time_point now) {
  promote_rested(now);
  std::optional<std::uint32_t> chosen = take_free();
  if (chosen) {
    --free_count_;
  } else if (!resting_.empty()) {
    // Every free port is resting: the one that has rested longest.
    chosen = resting_.front().offset;
    resting_.pop_front();
  } else {
    return std::nullopt;
  }
  state_[*chosen] = slot_state::taken;
  set_free_bit(*chosen, false);
  return port_at(*chosen);
}

void port_block::remove_from_order(std::uint32_t offset) {
  // random only: swap-remove from the bag
  const auto at = slot_[offset];
  bag_[at] = bag_.back();
  slot_[bag_[at]] = at;
  bag_.pop_back();
  slot_[offset] = nowhere;
}

void port_block::set_free_bit(std::uint32_t i, bool free) noexcept {
  const auto bit = std::uint64_t{1} << (i % 64);
  if (free) {
    free_bits_[i / 64] |= bit;
  } else {
    free_bits_[i / 64] &= ~bit;
  }
}

void port_block::make_free(std::uint32_t i) {
  state_[i] = slot_state::free;
  set_free_bit(i, true);
  ++free_count_;
  if (policy_ == port_policy::lru) lru_.push_back(i);
  if (policy_ == port_policy::random) {
    slot_[i] = gsl::narrow_cast<std::uint32_t>(bag_.size());
    bag_.push_back(i);
  }
}

void port_block::mark_owned(std::uint16_t port) {
  Expects(range_.contains(port));
  if (state_[offset(port)] == slot_state::taken) state_[offset(port)] = slot_state::owned;
}

void port_block::disown(std::uint16_t port) {
  Expects(range_.contains(port));
  if (state_[offset(port)] == slot_state::owned) state_[offset(port)] = slot_state::taken;
}

void port_block::give_back(std::uint16_t port) {
  Expects(range_.contains(port));
  const auto i = offset(port);
  if (state_[i] != slot_state::taken && state_[i] != slot_state::owned) return;
  if (returned_.empty()) returned_.assign(state_.size(), 0); // first return: a large block stays cheap to acquire
  returned_[i] = ++returns_;
  make_free(i);
}

void port_block::give_back(std::uint16_t port, clock::time_point ready_at) {
  Expects(range_.contains(port));
  const auto i = offset(port);
  if (state_[i] != slot_state::taken && state_[i] != slot_state::owned) return;
  if (returned_.empty()) returned_.assign(state_.size(), 0);
  returned_[i] = ++returns_;
  state_[i] = slot_state::resting;
  // Every rest has the same length per caller; a shorter one queued behind a
  // longer one merely waits for it (bounded by the longest interval).
  resting_.push_back({i, ready_at});
}

std::size_t port_block::reclaim_unheld(const port_bitmap& held) {
  std::size_t count = 0;
  for (std::uint32_t i = 0; i < state_.size(); ++i) {
    if (state_[i] != slot_state::taken || held.test(port_at(i))) continue;
    give_back(port_at(i));
    ++count;
  }
  return count;
}

} // namespace portres::detail
