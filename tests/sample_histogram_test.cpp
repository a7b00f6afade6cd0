// The samples' latency histogram (samples/common/histogram.hpp): percentiles
// within 1/128 of the exact ones, an exact maximum, merging, and fixed memory
// whatever the values.
#include "common/histogram.hpp"

#include "support.hpp"

#include <algorithm>
#include <random>
#include <vector>

namespace {

double exact(std::vector<std::uint64_t> v, double q) {
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
  return static_cast<double>(v[std::max<std::size_t>(rank, 1) - 1]) / 1000.0;
}

} // namespace

TEST_CASE("sample histogram: percentiles within 1/128 of the exact values") {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> latency(10.0, 1.5); // ns: a long tail from ~1 us to ~1 s
  std::vector<std::uint64_t> values;
  samples::histogram h;
  for (int i = 0; i < 100000; ++i) {
    const auto ns = static_cast<std::uint64_t>(latency(rng));
    values.push_back(ns);
    h.add_ns(ns);
  }
  REQUIRE(h.count() == values.size());
  for (const double q : {0.0, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0}) {
    const double want = exact(values, q);
    const double got = h.percentile_us(q);
    INFO("q = " << q << ", exact " << want << " us, histogram " << got << " us");
    CHECK(got >= want);                          // the bucket's highest value, never below the sample
    CHECK(got <= want * (1.0 + 1.0 / 128) + 0.001); // within one bucket's width
  }
  CHECK(h.max_us() == static_cast<double>(*std::max_element(values.begin(), values.end())) / 1000.0);
  CHECK(h.percentile_us(1.0) == h.max_us());
}

TEST_CASE("sample histogram: small values are exact, empty is zero, merge adds") {
  samples::histogram a, b;
  CHECK(a.percentile_us(0.5) == 0);
  CHECK(a.mean_us() == 0);
  for (std::uint64_t ns = 1; ns <= 100; ++ns) a.add_ns(ns);
  CHECK(a.percentile_us(0.5) == doctest::Approx(0.050));
  CHECK(a.percentile_us(0.99) == doctest::Approx(0.099));
  b.add_us(2000.0); // 2 ms
  a.merge(b);
  CHECK(a.count() == 101);
  CHECK(a.max_us() == doctest::Approx(2000.0));
  CHECK(a.percentile_us(1.0) == doctest::Approx(2000.0));
  CHECK(a.mean_us() == doctest::Approx((5050.0 + 2e6) / 101 / 1000));
  a.clear();
  CHECK(a.count() == 0);
  CHECK(a.percentile_us(0.99) == 0);
}

TEST_CASE("sample histogram: every 64-bit value has a bucket that holds it") {
  for (unsigned bit = 0; bit < 64; ++bit) {
    for (const std::uint64_t v : {std::uint64_t{1} << bit, (std::uint64_t{1} << bit) + 1,
                                  (std::uint64_t{1} << bit) * 2 - 1}) {
      const auto i = samples::histogram::index(v);
      REQUIRE(i < samples::histogram::bucket_count);
      CHECK(samples::histogram::highest_in(i) >= v);
      if (i > 0) CHECK(samples::histogram::highest_in(i - 1) < v);
    }
  }
}
