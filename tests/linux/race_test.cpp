// The race (issue 12): 8 processes x 1,000 acquires of overlapping specific
// blocks and wildcards, two listing loops beside them, random SIGKILLs of
// holders; a checker proves no two live grants ever overlapped.
// PORTRES_RACE_SCALE (a divisor, e.g. 10) shrinks it for the sanitizer suites.
#include "portres/portres.hpp"

#include "support.hpp"

#include <asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <random>
#include <vector>

#include <csignal>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace portres;

namespace {

constexpr int workers = 8;
constexpr int full_acquires = 1000;

// One grant as seen from outside: logged after acquire returned and closed
// before release was called (or when its holder was killed), so the logged
// interval lies inside the real one and a logged overlap is a real overlap.
struct grant_log {
  std::uint16_t first;
  std::uint16_t count;
  std::uint8_t proto;
  std::uint64_t start;
  std::atomic<std::uint64_t> end; // 0 while open
};

struct shared_state {
  std::atomic<std::uint64_t> clock;
  std::atomic<int> next[workers];    // acquires done per worker slot
  std::atomic<int> logged[workers];  // log entries per worker slot
  std::atomic<int> stop_listing;
  grant_log log[workers][full_acquires];
};

[[noreturn]] void worker(shared_state& st, int slot, int acquires) {
  select_backend(backend_kind::native);
  asio::io_context io;
  std::mt19937 rng(static_cast<unsigned>(::getpid()) * 7919u + static_cast<unsigned>(slot));
  while (true) {
    const int i = st.next[slot].fetch_add(1);
    if (i >= acquires) ::_exit(0);
    const auto proto = rng() % 2 ? protocol::tcp : protocol::udp;
    // Specific blocks of 6 starting every 4 ports overlap their neighbours.
    const port_range request = rng() % 3 == 0
                                   ? port_range::wildcard(1 + rng() % 8)
                                   : port_range{static_cast<std::uint16_t>(21000 + 4 * (rng() % 12)), 6};
    std::error_code ec;
    auto r = acquire(io.get_executor(), proto, request, ec);
    if (ec) continue;
    const int n = st.logged[slot].fetch_add(1);
    auto& entry = st.log[slot][n];
    entry.first = r.range().first();
    entry.count = static_cast<std::uint16_t>(r.range().count());
    entry.proto = static_cast<std::uint8_t>(proto);
    entry.start = st.clock.fetch_add(1) + 1;
    ::usleep(static_cast<useconds_t>(rng() % 300));
    entry.end = st.clock.fetch_add(1) + 1;
    r.release();
  }
}

[[noreturn]] void lister(shared_state& st) {
  select_backend(backend_kind::native);
  for (int i = 0; i < 100000 && !st.stop_listing.load(); ++i) {
    std::error_code ec;
    (void)list_runtime(ec);
  }
  ::_exit(0);
}

} // namespace

TEST_CASE("race: no two live grants ever overlap (processes, listings, SIGKILLs)") {
  const int acquires = portres_test::race_scaled(full_acquires);
  void* memory = ::mmap(nullptr, sizeof(shared_state), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  REQUIRE(memory != MAP_FAILED);
  auto& st = *new (memory) shared_state{};
  {
    // Touch the registry once before forking so every child opens the same folder.
    asio::io_context io;
    select_backend(backend_kind::native);
    std::error_code ec;
    (void)list_runtime(ec);
  }
  pid_t pids[workers];
  for (int s = 0; s < workers; ++s) {
    pids[s] = ::fork();
    if (pids[s] == 0) worker(st, s, acquires);
  }
  pid_t listers[2];
  for (auto& l : listers) {
    l = ::fork();
    if (l == 0) lister(st);
  }
  std::mt19937 rng(12345);
  int kills = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(4);
  int running = workers;
  while (running > 0 && std::chrono::steady_clock::now() < deadline) {
    ::usleep(20000);
    const int s = static_cast<int>(rng() % workers);
    if (pids[s] > 0 && kills < 40 && rng() % 2 == 0) {
      const auto at = st.clock.fetch_add(1) + 1;
      ::kill(pids[s], SIGKILL);
      ::waitpid(pids[s], nullptr, 0);
      ++kills;
      const int n = st.logged[s].load();
      if (n > 0 && st.log[s][n - 1].end == 0) st.log[s][n - 1].end = at; // died holding it
      pids[s] = ::fork(); // a fresh holder takes over the slot's remaining acquires
      if (pids[s] == 0) worker(st, s, acquires);
    }
    running = 0;
    for (auto& pid : pids) {
      if (pid > 0 && ::waitpid(pid, nullptr, WNOHANG) == pid) pid = -1;
      running += pid > 0;
    }
  }
  for (auto& pid : pids) {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  st.stop_listing = 1;
  for (auto l : listers) ::waitpid(l, nullptr, 0);
  CHECK(running == 0); // finished within the time bound

  std::vector<const grant_log*> grants;
  for (int s = 0; s < workers; ++s) {
    for (int i = 0; i < st.logged[s].load(); ++i) {
      if (st.log[s][i].start != 0) grants.push_back(&st.log[s][i]);
    }
  }
  const auto end_of = [&](const grant_log* g) { return g->end ? g->end.load() : st.clock.load() + 1; };
  int overlaps = 0;
  for (std::size_t a = 0; a < grants.size(); ++a) {
    for (std::size_t b = a + 1; b < grants.size(); ++b) {
      const auto *x = grants[a], *y = grants[b];
      if (x->proto != y->proto) continue;
      const bool ports = x->first < y->first + y->count && y->first < x->first + x->count;
      const bool times = x->start < end_of(y) && y->start < end_of(x);
      overlaps += ports && times;
    }
  }
  std::printf("race: %zu grants of %d acquires, %d overlaps, %d SIGKILLs\n", grants.size(), workers * acquires,
              overlaps, kills);
  CHECK(grants.size() > static_cast<std::size_t>(workers * acquires / 10));
  CHECK(kills > 0);
  CHECK(overlaps == 0);
  ::munmap(memory, sizeof(shared_state));
}
