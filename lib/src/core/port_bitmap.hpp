// One bit per port number (65,536 bits), with word-at-a-time range scans so
// that finding a free run of 16,384 ports costs hundreds of word reads, not
// tens of thousands of bit tests.
#ifndef PORTRES_SRC_CORE_PORT_BITMAP_HPP
#define PORTRES_SRC_CORE_PORT_BITMAP_HPP

#include <array>
#include <bit>
#include <cstdint>
#include <optional>

namespace portres::detail {

class port_bitmap {
public:
  void set(std::uint32_t port) noexcept { words_[port >> 6] |= bit(port); }
  void reset(std::uint32_t port) noexcept { words_[port >> 6] &= ~bit(port); }
  bool test(std::uint32_t port) const noexcept { return (words_[port >> 6] & bit(port)) != 0; }

  /// Sets ports [first, last].
  void set_range(std::uint32_t first, std::uint32_t last) noexcept {
    for (std::uint32_t p = first; p <= last;) {
      if ((p & 63) == 0 && p + 63 <= last) {
        words_[p >> 6] = ~std::uint64_t{0};
        p += 64;
      } else {
        set(p++);
      }
    }
  }

  /// The first set port in [from, to], if any.
  std::optional<std::uint32_t> next_set(std::uint32_t from, std::uint32_t to) const noexcept {
    return next(from, to, false);
  }
  /// The first clear port in [from, to], if any.
  std::optional<std::uint32_t> next_clear(std::uint32_t from, std::uint32_t to) const noexcept {
    return next(from, to, true);
  }

  /// The lowest run of `count` clear ports inside [lo, hi]; its first port.
  std::optional<std::uint32_t> find_clear_run(std::uint32_t count, std::uint32_t lo,
                                              std::uint32_t hi) const noexcept {
    std::uint32_t start = lo;
    while (true) {
      const auto clear = next_clear(start, hi);
      if (!clear) return std::nullopt;
      const std::uint32_t run_end = *clear + count - 1;
      if (run_end > hi) return std::nullopt;
      const auto blocker = next_set(*clear, run_end);
      if (!blocker) return *clear;
      start = *blocker + 1;
    }
  }

  /// How many ports of [lo, hi] are set (a word at a time).
  std::uint32_t count(std::uint32_t lo, std::uint32_t hi) const noexcept {
    if (lo > hi) return 0;
    std::uint32_t n = 0;
    for (std::uint32_t w = lo >> 6; w <= (hi >> 6); ++w) {
      std::uint64_t word = words_[w];
      if (w == (lo >> 6)) word &= ~std::uint64_t{0} << (lo & 63);
      if (w == (hi >> 6) && (hi & 63) != 63) word &= (std::uint64_t{1} << ((hi & 63) + 1)) - 1;
      n += static_cast<std::uint32_t>(std::popcount(word));
    }
    return n;
  }

  /// Calls f(first, last) for each run of set ports inside [lo, hi], in order.
  template <class F>
  void for_each_run(std::uint32_t lo, std::uint32_t hi, F f) const {
    for (std::uint32_t from = lo; from <= hi;) {
      const auto first = next_set(from, hi);
      if (!first) return;
      const auto after = next_clear(*first, hi);
      const std::uint32_t last = after ? *after - 1 : hi;
      f(*first, last);
      if (!after) return;
      from = *after;
    }
  }

  port_bitmap& operator|=(const port_bitmap& o) noexcept {
    for (std::size_t i = 0; i < words_.size(); ++i) words_[i] |= o.words_[i];
    return *this;
  }
  /// Clears every port set in `o`.
  port_bitmap& remove(const port_bitmap& o) noexcept {
    for (std::size_t i = 0; i < words_.size(); ++i) words_[i] &= ~o.words_[i];
    return *this;
  }
  friend bool operator==(const port_bitmap&, const port_bitmap&) = default;

private:
  static std::uint64_t bit(std::uint32_t port) noexcept { return std::uint64_t{1} << (port & 63); }

  std::optional<std::uint32_t> next(std::uint32_t from, std::uint32_t to, bool clear) const noexcept {
    if (from > to) return std::nullopt;
    std::uint32_t w = from >> 6;
    std::uint64_t word = (clear ? ~words_[w] : words_[w]) & (~std::uint64_t{0} << (from & 63));
    while (true) {
      if (word != 0) {
        const std::uint32_t p = (w << 6) + static_cast<std::uint32_t>(std::countr_zero(word));
        return p <= to ? std::optional<std::uint32_t>(p) : std::nullopt;
      }
      if (++w > (to >> 6)) return std::nullopt;
      word = clear ? ~words_[w] : words_[w];
    }
  }

  std::array<std::uint64_t, 1024> words_{};
};

} // namespace portres::detail

#endif
