#include "core/port_reclaim.hpp"

#include <gsl/gsl>

#include <utility>

namespace portres::detail {
namespace {
// Entries freed behind the lists' back are dropped as they come up; at most
// this many per call (forget_free clears them in bulk).
constexpr std::size_t max_skips = 256;
} // namespace

std::uint32_t port_reclaim::offset(std::uint16_t port) {
  Expects(range_.contains(port));
  if (in_.empty()) {
    next_.assign(range_.count(), nil);
    prev_.assign(range_.count(), nil);
    in_.assign(range_.count(), none);
    handed_.assign(range_.count(), 0);
  }
  return port - range_.first();
}

void port_reclaim::link_front(list_id l, std::uint32_t i) noexcept {
  auto& L = lists_[l];
  prev_[i] = nil;
  next_[i] = L.head;
  if (L.head != nil) prev_[L.head] = i;
  L.head = i;
  if (L.tail == nil) L.tail = i;
  in_[i] = l;
  ++L.size;
}

void port_reclaim::link_back(list_id l, std::uint32_t i) noexcept {
  auto& L = lists_[l];
  next_[i] = nil;
  prev_[i] = L.tail;
  if (L.tail != nil) next_[L.tail] = i;
  L.tail = i;
  if (L.head == nil) L.head = i;
  in_[i] = l;
  ++L.size;
}

void port_reclaim::unlink(std::uint32_t i) noexcept {
  if (in_[i] == none) return;
  auto& L = lists_[in_[i]];
  if (prev_[i] != nil) next_[prev_[i]] = next_[i]; else L.head = next_[i];
  if (next_[i] != nil) prev_[next_[i]] = prev_[i]; else L.tail = prev_[i];
  next_[i] = prev_[i] = nil;
  in_[i] = none;
  --L.size;
}

void port_reclaim::handed_out(std::uint16_t port) {
  const auto i = offset(port);
  handed_[i] = ++hand_outs_;
  unlink(i);
  link_front(recent, i);
}

void port_reclaim::held(std::uint16_t port) {
  const auto i = offset(port);
  handed_[i] = ++hand_outs_;
  unlink(i);
  link_back(held_list, i);
}

std::optional<std::uint32_t> port_reclaim::pop_reclaimable(list_id l, const port_block& ports, std::size_t& skips) {
  while (lists_[l].head != nil && skips < max_skips) {
    const auto i = lists_[l].head;
    unlink(i);
    if (ports.reclaimable(gsl::narrow_cast<std::uint16_t>(range_.first() + i))) return i;
    ++skips;
  }
  return std::nullopt;
}

std::size_t port_reclaim::probe(port_block& ports, const probe_fn& ask, std::error_code& ec) {
  ec.clear();
  if (in_.empty()) return 0;
  std::size_t skips = 0;
  // Found held: back in line behind the others once the call is over, so a
  // second round never probes them again.
  std::array<std::uint32_t, rounds * probes_per_round> still_held{};
  std::size_t held_count = 0;
  const auto requeue = gsl::finally([&] {
    for (std::size_t k = 0; k < held_count; ++k) link_back(held_list, still_held[k]);
  });
  for (int round = 0; round < rounds; ++round) {
    std::array<std::uint32_t, probes_per_round> batch{};
    std::array<std::uint16_t, probes_per_round> batch_ports{};
    std::array<list_id, probes_per_round> from{};
    std::size_t n = 0;
    // Newest hand-out, then the port held longest since its last probe, in turn.
    for (list_id next = recent; n < probes_per_round; next = next == recent ? held_list : recent) {
      auto i = pop_reclaimable(next, ports, skips);
      list_id source = next;
      if (!i) {
        source = next == recent ? held_list : recent;
        i = pop_reclaimable(source, ports, skips);
      }
      if (!i) break;
      batch[n] = *i;
      batch_ports[n] = gsl::narrow_cast<std::uint16_t>(range_.first() + *i);
      from[n++] = source;
    }
    if (n == 0) return 0;
    const auto free = ask(std::span<const std::uint16_t>(batch_ports.data(), n), ec);
    if (ec) {
      // Unknown: every candidate goes back where it was, in its place.
      for (std::size_t k = n; k-- > 0;) link_front(from[k], batch[k]);
      return 0;
    }
    std::array<std::uint32_t, probes_per_round> freed{};
    std::size_t freed_count = 0;
    for (std::size_t k = 0; k < n; ++k) {
      if (free & (std::uint32_t{1} << k)) {
        freed[freed_count++] = batch[k];
      } else {
        still_held[held_count++] = batch[k];
      }
    }
    // Oldest first, by insertion (four at most); unsigned ages survive the counter's wrap.
    for (std::size_t k = 1; k < freed_count; ++k) {
      for (std::size_t j = k; j > 0 && hand_outs_ - handed_[freed[j]] > hand_outs_ - handed_[freed[j - 1]]; --j) {
        std::swap(freed[j], freed[j - 1]);
      }
    }
    for (std::size_t k = 0; k < freed_count; ++k) ports.give_back(gsl::narrow_cast<std::uint16_t>(range_.first() + freed[k]));
    if (freed_count != 0) return freed_count;
  }
  return 0;
}

void port_reclaim::forget_free(const port_block& ports) {
  if (in_.empty()) return;
  for (const list_id l : {recent, held_list}) {
    for (auto i = lists_[l].head; i != nil;) {
      const auto after = next_[i];
      if (!ports.reclaimable(gsl::narrow_cast<std::uint16_t>(range_.first() + i))) unlink(i);
      i = after;
    }
  }
}

} // namespace portres::detail
