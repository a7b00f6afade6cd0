#include "core/port_block.hpp"

#include <gsl/gsl>

#include <algorithm>

namespace portres::detail {
namespace {
constexpr std::uint32_t nowhere = ~std::uint32_t{0};
}

port_block::port_block(port_range range, port_policy policy)
    : range_(range), policy_(policy), free_(range.count(), true), free_count_(range.count()) {
  Expects(!range.is_wildcard() && !range.validate());
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
    slot_.assign(free_.size(), nowhere);
    rng_.seed(std::random_device{}()); // seeded only where randomness is used
  }
  for (std::uint32_t i = 0; i < free_.size(); ++i) {
    if (!free_[i]) continue;
    if (policy_ == port_policy::lru) lru_.push_back(i);
    if (policy_ == port_policy::random) {
      slot_[i] = gsl::narrow_cast<std::uint32_t>(bag_.size());
      bag_.push_back(i);
    }
  }
}

std::optional<std::uint16_t> port_block::take() {
  if (free_count_ == 0) return std::nullopt;
  std::uint32_t chosen = 0;
  switch (policy_) {
  case port_policy::sequential: {
    const auto n = gsl::narrow_cast<std::uint32_t>(free_.size());
    std::uint32_t i = cursor_ % n;
    while (!free_[i]) i = (i + 1) % n; // terminates: free_count_ > 0
    chosen = i;
    cursor_ = (i + 1) % n;
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
  free_[chosen] = false;
  // Allocated at the first take, so acquiring a large block stays cheap.
  if (taken_at_.empty()) taken_at_.assign(free_.size(), 0);
  taken_at_[chosen] = ++takes_;
  --free_count_;
  return port_at(chosen);
}

void port_block::remove_from_order(std::uint32_t offset) {
  // random only: swap-remove from the bag
  const auto at = slot_[offset];
  bag_[at] = bag_.back();
  slot_[bag_[at]] = at;
  bag_.pop_back();
  slot_[offset] = nowhere;
}

void port_block::give_back(std::uint16_t port) {
  Expects(range_.contains(port));
  const auto i = offset(port);
  if (free_[i]) return;
  free_[i] = true;
  ++free_count_;
  if (policy_ == port_policy::lru) lru_.push_back(i);
  if (policy_ == port_policy::random) {
    slot_[i] = gsl::narrow_cast<std::uint32_t>(bag_.size());
    bag_.push_back(i);
  }
}

std::size_t port_block::reclaim_all() {
  std::vector<std::uint32_t> returned;
  for (std::uint32_t i = 0; i < free_.size(); ++i) {
    if (!free_[i]) returned.push_back(i);
  }
  // Oldest hand-outs first: for lru, rested ports before recent ones (TIME_WAIT).
  std::sort(returned.begin(), returned.end(),
            [this](std::uint32_t a, std::uint32_t b) { return taken_at_[a] < taken_at_[b]; });
  for (const auto i : returned) give_back(port_at(i));
  return returned.size();
}

} // namespace portres::detail
