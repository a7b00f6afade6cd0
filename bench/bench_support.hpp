// Shared benchmark machinery: a private network namespace where root allows
// it, occupancy of the ephemeral range held by child processes, per-op
// latency percentiles, and a loopback listener.
#ifndef PORTRES_BENCH_SUPPORT_HPP
#define PORTRES_BENCH_SUPPORT_HPP

#include <benchmark/benchmark.h>

#include "portres/types.hpp"

#include <asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <system_error>
#include <utility>
#include <string>
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
  std::string registry;       ///< "per_user" or "broker": the registry mode asked for
  std::string registry_error; ///< why that mode is not in force (empty when it is)
};

/// Which registry the process uses, set by main before prepare_environment:
/// "per_user" (PORTRES_BROKER=off) or "broker" (portresd at `portresd_path`,
/// started inside the private namespace and stopped at exit).
struct registry_choice {
  std::string mode = "per_user";
  std::string portresd_path;
};
registry_choice& requested_registry();

/// Sets up the process (namespace, fd limit, private portres folders, which
/// are removed at exit; the registry mode).
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
  /// add() and the iteration's manual time: the timed region of a case.
  void add_timed(benchmark::State& state, clock_type::duration d) {
    add(d);
    state.SetIterationTime(std::chrono::duration<double>(d).count());
  }
  /// Sets <prefix>p50_us, p99_us, p999_us, max_us and mean_us.
  void report(benchmark::State& state, const std::string& prefix = "");

private:
  std::vector<double> samples_;
};

/// Failures by errno name ("EADDRNOTAVAIL", "ETIMEDOUT", ...; portres' own
/// errors by their message); reported as counters fail_<NAME> plus failures.
class failure_counts {
public:
  void add(const std::error_code& ec);
  std::uint64_t total() const { return total_; }
  void report(benchmark::State& state) const;

private:
  std::map<std::string, std::uint64_t> by_kind_;
  std::uint64_t total_ = 0;
};

/// The symbolic errno name of a system error ("EADDRNOTAVAIL"), else a short
/// tag naming the category and value.
std::string error_name(const std::error_code& ec);

/// CPU time (user + system) of the whole process, all threads (the library's
/// blocking-pool threads included), in seconds.
double process_cpu_seconds();

/// Registers `name` with one case per level (ArgName `arg`), manual time.
template <class Body>
benchmark::internal::Benchmark* register_levels(const std::string& name, const char* arg,
                                                const std::vector<std::int64_t>& levels, benchmark::TimeUnit unit,
                                                Body body) {
  auto* b = benchmark::RegisterBenchmark(name.c_str(), body);
  b->ArgName(arg)->UseManualTime()->Unit(unit);
  for (const auto level : levels) b->Arg(level);
  return b;
}

/// Child processes of this binary (run with --hold-reservations=N) that each
/// acquire and hold runtime reservations until destroyed.
class foreign_reservations {
public:
  explicit foreign_reservations(std::uint32_t count);
  ~foreign_reservations();
  foreign_reservations(const foreign_reservations&) = delete;
  foreign_reservations& operator=(const foreign_reservations&) = delete;
  std::uint32_t held() const { return held_; }

private:
  std::vector<std::pair<int, int>> children_; // pid, stdin pipe
  std::uint32_t held_ = 0;
};

/// Child mode: acquires `count` reservations of 4 ports, prints how many it
/// holds, and holds them until its stdin closes. Returns the exit status.
int hold_reservations_main(std::uint32_t count);

/// A loopback listener in a child process (so neither its CPU time nor its
/// system calls count as the client's) that accepts and, per connection,
/// waits for the client's close before closing (the client closes first).
class sink_server {
public:
  sink_server();
  ~sink_server();
  sink_server(const sink_server&) = delete;
  sink_server& operator=(const sink_server&) = delete;
  asio::ip::tcp::endpoint endpoint() const { return endpoint_; }

private:
  int pid_ = -1;
  asio::ip::tcp::endpoint endpoint_;
};

/// The port policies, each with the name its cases carry (own/portres_NAME,
/// churn/pool_NAME).
struct named_policy {
  const char* name;
  portres::port_policy policy;
};
inline constexpr named_policy policies[] = {{"sequential", portres::port_policy::sequential},
                                            {"lru", portres::port_policy::lru},
                                            {"random", portres::port_policy::random}};

/// Occupancy levels of the suite, in percent.
inline const std::vector<std::int64_t> occupancy_levels = {0, 50, 90, 99};

/// 127.0.0.1, where every case binds and connects.
inline const asio::ip::address_v4 loopback = asio::ip::address_v4::loopback();

/// Length of each churn run in seconds (--churn_seconds).
extern double churn_seconds;

// Case registration, by main once the command line is read (the cases'
// shape depends on it). Each source file registers its own cases; the
// registering functions have distinct names so that the files also build as
// one unity translation unit (scripts/bench builds them so).

/// bind/* and own/*. `iterations` > 0 fixes the binds per repetition;
/// 0 leaves the count to Google Benchmark's calibration, which runs each
/// case again for every count it tries, and so repeats the case's setup (a
/// child holding 99 % of the range, or a fill of 16,384 sockets) each time.
void register_bind_cases(std::int64_t iterations);
/// connect/* and churn/*.
void register_connect_cases();
/// acquire/<mode>/*: a process picks its registry mode once.
void register_acquire_cases(const std::string& mode);

} // namespace portres_bench

#endif
