// Shared benchmark machinery: a private network namespace where root allows
// it, occupancy of the ephemeral range held by child processes, per-op
// latency percentiles, and a loopback listener.
#ifndef PORTRES_BENCH_SUPPORT_HPP
#define PORTRES_BENCH_SUPPORT_HPP

#include <benchmark/benchmark.h>

#include <asio/ip/tcp.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace portres_bench {

using clock_type = std::chrono::steady_clock;

/// The ephemeral range the benchmarks occupy (narrowed inside the private
/// namespace so that 99 % fits the fd limit).
struct port_span {
  std::uint16_t first;
  std::uint16_t last;
  std::uint32_t count() const { return std::uint32_t{last} - first + 1; }
};

/// How the environment was prepared; printed into the report context.
struct environment {
  bool private_netns = false;
  port_span ephemeral{32768, 60999};
  std::string occupancy_method;
};

/// Sets up the process (namespace, fd limit, private portres folders).
const environment& prepare_environment();

/// Reads/writes a sysctl of this (private) namespace.
std::string read_sysctl(const char* path);
bool write_sysctl(const char* path, const std::string& value);
void set_ephemeral_range(port_span span);

enum class pattern { random, clustered };

/// Binds `percent` % of the ephemeral range in child processes (each holds at
/// most 15,000 sockets, below the fd limit) until destroyed.
class occupancy {
public:
  occupancy(int percent, pattern how);
  ~occupancy();
  occupancy(const occupancy&) = delete;
  occupancy& operator=(const occupancy&) = delete;
  std::size_t held() const { return held_; }

private:
  std::vector<int> children_;
  std::size_t held_ = 0;
};

/// Per-operation latencies: percentiles go into the benchmark's counters.
class latencies {
public:
  explicit latencies(std::size_t reserve = 1 << 16) { samples_.reserve(reserve); }
  void add(clock_type::duration d) { samples_.push_back(std::chrono::duration<double, std::micro>(d).count()); }
  /// Sets p50_us, p99_us and max_us.
  void report(benchmark::State& state);

private:
  std::vector<double> samples_;
};

/// A loopback listener that accepts and, per connection, waits for the
/// client's close before closing (so the client side closes first).
class sink_server {
public:
  sink_server();
  ~sink_server();
  asio::ip::tcp::endpoint endpoint() const { return endpoint_; }

private:
  int listener_ = -1;
  asio::ip::tcp::endpoint endpoint_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

/// Occupancy levels of the suite, in percent.
inline const std::vector<std::int64_t> occupancy_levels = {0, 50, 90, 99};

} // namespace portres_bench

#endif
