// The race against portresd: 8 processes acquire and release overlapping
// specific blocks and wildcards, two more list all the while, and holders are
// SIGKILLed at random. Each process records, on a shared monotonic clock,
// when it held what (from after its grant returned to before it asked for
// release, or to its kill); a checker proves no two held blocks overlapped.
// PORTRES_RACE_ACQUIRES scales the per-process count (default 1000).
#include "linux/broker_support.hpp"
#include "portres/error.hpp"

#include <algorithm>
#include <map>
#include <cstdlib>
#include <random>
#include <vector>

#include <fcntl.h>
#include <time.h>

using namespace portres;
using namespace portres_test;
using portres::detail::blocking;

namespace {

struct record {
  std::int64_t start_ns;
  std::int64_t end_ns; // 0: the grant began (its end follows, or the process was killed)
  std::uint64_t token;
  std::uint32_t first;
  std::uint32_t count;
  std::int32_t pid;
  std::int32_t failures; // unexpected errors so far (on end records)
};

std::int64_t now_ns() {
  timespec t{};
  ::clock_gettime(CLOCK_MONOTONIC, &t);
  return std::int64_t{t.tv_sec} * 1000000000 + t.tv_nsec;
}

[[noreturn]] void worker(const std::string& name, int log_fd, int acquires, unsigned seed) {
  std::string reason;
  auto broker = portres::detail::broker_registry::connect(name, reason);
  if (!broker) ::_exit(3);
  std::mt19937 rng(seed);
  const auto draw = [&](std::uint32_t n) { return static_cast<std::uint32_t>(rng() % n); };
  std::int32_t failures = 0;
  const auto deadline = now_ns() + std::int64_t{60} * 1000000000;
  for (int i = 0; i < acquires && now_ns() < deadline; ++i) {
    const bool wildcard = draw(3) == 0;
    // Specific blocks crowd into 48 ports inside the ephemeral range, so they
    // overlap often (and each grant rewrites the kernel list).
    const port_range request = wildcard ? port_range(0, 1 + draw(8))
                                        : port_range(static_cast<std::uint16_t>(50000 + draw(40)), 1 + draw(8));
    const reservation_token token{(std::uint64_t{rng()} << 32) | rng() | 1};
    std::error_code ec;
    port_range granted;
    auto lease = broker->grant(protocol::tcp, request, token, blocking::allowed, granted, ec);
    if (ec) {
      if (ec != error::overlaps_reservation && ec != condition::in_use && ec != error::block_unavailable) ++failures;
      continue;
    }
    record begin{now_ns(), 0, token.value(), granted.first(), granted.count(), ::getpid(), failures};
    (void)!::write(log_fd, &begin, sizeof begin);
    if (draw(4) == 0) ::usleep(draw(200));
    record end = begin;
    end.end_ns = now_ns();
    end.failures = failures;
    (void)!::write(log_fd, &end, sizeof end);
    broker->release(*lease, blocking::allowed, ec);
    if (ec) ++failures;
  }
  record done{now_ns(), -1, 0, 0, 0, ::getpid(), failures};
  (void)!::write(log_fd, &done, sizeof done);
  ::_exit(0);
}

[[noreturn]] void lister(const std::string& name, volatile bool*) {
  std::string reason;
  auto broker = portres::detail::broker_registry::connect(name, reason);
  if (!broker) ::_exit(3);
  const auto deadline = now_ns() + std::int64_t{90} * 1000000000;
  while (now_ns() < deadline) {
    std::error_code ec;
    broker->list(ec);
    if (ec) ::_exit(4);
  }
  ::_exit(0);
}

} // namespace

TEST_CASE("broker race: 8 processes, listings and SIGKILLs never see two live grants overlap") {
  if (const char* why = broker_skip_reason()) PORTRES_SKIP(why);
  int acquires = 1000;
  if (const char* scale = std::getenv("PORTRES_RACE_ACQUIRES")) acquires = std::max(10, std::atoi(scale));
  test_daemon daemon("race");
  const auto log_path = scratch_dir() / "broker-race.log";
  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_TRUNC | O_CLOEXEC, 0600);
  REQUIRE(log_fd >= 0);

  std::vector<pid_t> listers;
  for (int i = 0; i < 2; ++i) {
    const pid_t pid = ::fork();
    if (pid == 0) lister(daemon.name(), nullptr);
    listers.push_back(pid);
  }
  std::vector<pid_t> workers;
  for (int i = 0; i < 8; ++i) {
    const pid_t pid = ::fork();
    if (pid == 0) worker(daemon.name(), log_fd, acquires, 1000u + static_cast<unsigned>(i));
    workers.push_back(pid);
  }
  // Random SIGKILLs; each victim is replaced by a fresh worker (a quarter of the count).
  std::mt19937 rng(7);
  std::vector<std::pair<pid_t, std::int64_t>> killed;
  int running = 8, exited_ok = 0, replacements = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (running > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 60u));
    if (killed.size() < 12) {
      const pid_t victim = workers[rng() % workers.size()];
      if (victim > 0 && ::kill(victim, SIGKILL) == 0) {
        killed.emplace_back(victim, now_ns());
        ::waitpid(victim, nullptr, 0);
        --running;
        std::replace(workers.begin(), workers.end(), victim, pid_t{-1});
        const pid_t pid = ::fork();
        if (pid == 0) worker(daemon.name(), log_fd, acquires / 4, 5000u + static_cast<unsigned>(replacements));
        ++replacements;
        ++running;
        *std::find(workers.begin(), workers.end(), pid_t{-1}) = pid;
      }
    }
    int status = 0;
    pid_t done;
    while ((done = ::waitpid(-1, &status, WNOHANG)) > 0) {
      const auto it = std::find(workers.begin(), workers.end(), done);
      if (it == workers.end()) continue;
      *it = -1;
      --running;
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0) ++exited_ok;
    }
  }
  for (const pid_t pid : workers) {
    if (pid > 0) ::kill(pid, SIGKILL), ::waitpid(pid, nullptr, 0);
  }
  int lister_ok = 0;
  for (const pid_t pid : listers) {
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) ++lister_ok; // still listing without error
  }
  ::close(log_fd);
  CHECK(running == 0); // finished within the bound
  CHECK(lister_ok == 2);
  CHECK(daemon.alive());

  // The checker.
  std::vector<record> records;
  {
    std::ifstream in(log_path, std::ios::binary);
    record r{};
    while (in.read(reinterpret_cast<char*>(&r), sizeof r)) records.push_back(r);
  }
  struct held {
    std::int64_t start, end;
    port_range block;
  };
  std::map<std::uint64_t, held> by_token;
  std::map<pid_t, std::int64_t> kill_time(killed.begin(), killed.end());
  std::int32_t failures = 0;
  for (const auto& r : records) {
    if (r.end_ns == -1) {
      failures += r.failures;
      continue;
    }
    auto& h = by_token[r.token ^ (std::uint64_t(r.pid) << 1)];
    h.block = port_range(static_cast<std::uint16_t>(r.first), r.count);
    if (r.end_ns == 0) {
      h.start = r.start_ns;
      h.end = kill_time.count(r.pid) ? kill_time[r.pid] : std::int64_t{-1};
    } else {
      h.end = r.end_ns;
    }
  }
  std::vector<held> intervals;
  std::size_t unterminated = 0;
  for (const auto& [token, h] : by_token) {
    if (h.end < 0) ++unterminated;
    else intervals.push_back(h);
  }
  std::sort(intervals.begin(), intervals.end(), [](const held& a, const held& b) { return a.start < b.start; });
  std::size_t overlaps = 0;
  for (std::size_t i = 0; i < intervals.size(); ++i) {
    for (std::size_t j = i + 1; j < intervals.size() && intervals[j].start < intervals[i].end; ++j) {
      if (intervals[j].block.overlaps(intervals[i].block)) ++overlaps;
    }
  }
  std::printf("broker race: %zu grants checked, %zu SIGKILLs, %d workers finished, %d unexpected errors, %zu overlaps\n",
              intervals.size(), killed.size(), exited_ok, failures, overlaps);
  CHECK(unterminated == 0);
  CHECK(overlaps == 0);
  CHECK(failures == 0);
  CHECK(intervals.size() >= static_cast<std::size_t>(acquires)); // the race really ran
  // After everything died, nothing is left live.
  std::error_code ec;
  CHECK(eventually([&] { return daemon.client()->list(ec).empty(); }));
}
