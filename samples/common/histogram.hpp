// A latency histogram for the samples: log-linear buckets over nanoseconds
// (as HdrHistogram lays them out), so memory stays fixed however long a run
// lasts, and percentiles are exact to within 1/128 (0.8 %) of the value.
#ifndef PORTRES_SAMPLES_HISTOGRAM_HPP
#define PORTRES_SAMPLES_HISTOGRAM_HPP

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

namespace samples {

class histogram {
public:
  /// Values below 2^bits nanoseconds get a bucket each; above, each power of
  /// two is split into 2^(bits-1) buckets.
  static constexpr unsigned bits = 8;
  static constexpr std::size_t linear = std::size_t{1} << bits;
  static constexpr std::size_t per_octave = linear / 2;
  static constexpr std::size_t bucket_count = linear + (64 - bits) * per_octave;

  histogram() : counts_(bucket_count) {}

  void add_us(double us) { add_ns(us <= 0 ? 0 : static_cast<std::uint64_t>(std::llround(us * 1000.0))); }

  void add_ns(std::uint64_t ns) {
    ++counts_[index(ns)];
    ++count_;
    sum_ns_ += static_cast<double>(ns);
    max_ns_ = std::max(max_ns_, ns);
  }

  void merge(const histogram& other) {
    for (std::size_t i = 0; i < bucket_count; ++i) counts_[i] += other.counts_[i];
    count_ += other.count_;
    sum_ns_ += other.sum_ns_;
    max_ns_ = std::max(max_ns_, other.max_ns_);
  }

  void clear() {
    std::fill(counts_.begin(), counts_.end(), 0);
    count_ = 0;
    sum_ns_ = 0;
    max_ns_ = 0;
  }

  std::uint64_t count() const noexcept { return count_; }
  double max_us() const noexcept { return static_cast<double>(max_ns_) / 1000.0; }
  double mean_us() const noexcept { return count_ ? sum_ns_ / static_cast<double>(count_) / 1000.0 : 0.0; }

  /// The smallest value at or below which a share `q` (0..1) of the samples
  /// lie: the highest value of that sample's bucket, never above the
  /// largest sample seen. 0 when empty.
  double percentile_us(double q) const {
    if (count_ == 0) return 0;
    const auto wanted = std::max<std::uint64_t>(
        1, static_cast<std::uint64_t>(std::ceil(std::clamp(q, 0.0, 1.0) * static_cast<double>(count_))));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < bucket_count; ++i) {
      seen += counts_[i];
      if (seen >= wanted) return static_cast<double>(std::min(highest_in(i), max_ns_)) / 1000.0;
    }
    return max_us();
  }

  static std::size_t index(std::uint64_t ns) noexcept {
    const auto width = static_cast<unsigned>(std::bit_width(ns));
    if (width <= bits) return static_cast<std::size_t>(ns);
    const unsigned shift = width - bits;
    // ns >> shift lies in [per_octave, linear): its top bit is always set.
    return linear + (shift - 1) * per_octave + static_cast<std::size_t>((ns >> shift) - per_octave);
  }

  static std::uint64_t highest_in(std::size_t i) noexcept {
    if (i < linear) return i;
    const auto shift = static_cast<unsigned>((i - linear) / per_octave) + 1;
    const std::uint64_t top = (i - linear) % per_octave + per_octave;
    return ((top + 1) << shift) - 1;
  }

private:
  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0;
  double sum_ns_ = 0;
  std::uint64_t max_ns_ = 0;
};

} // namespace samples

#endif
