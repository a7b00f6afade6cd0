// Faults and hostile state: many processes racing for blocks, a store writer
// killed mid-write, symlinked and world-writable state paths, garbage files.
#include "portres/portres.hpp"

#include "linux/persistent_store.hpp"
#include "linux/state_files.hpp"
#include "support.hpp"

#include <asio/io_context.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include <csignal>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

using namespace portres;
namespace fs = std::filesystem;

namespace {

std::uint64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

struct grant {
  std::uint32_t process;
  std::uint32_t first, count;
  std::uint64_t from, to; // held at least during [from, to]
};

} // namespace

TEST_CASE("8 processes x 1,000 acquire/release cycles: no two live blocks ever overlap") {
  select_backend(backend_kind::native);
  const auto log_dir = portres_test::scratch_dir() / "grants";
  fs::create_directories(log_dir);
  constexpr int processes = 8, cycles = 1000;
  std::vector<pid_t> children;
  for (int p = 0; p < processes; ++p) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      asio::io_context io;
      std::FILE* log = std::fopen((log_dir / std::to_string(p)).c_str(), "w");
      std::mt19937 rng(static_cast<unsigned>(p));
      int failures = 0;
      for (int i = 0; i < cycles; ++i) {
        std::error_code ec;
        auto r = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(1 + rng() % 64), ec);
        if (ec) {
          ++failures;
          continue;
        }
        const auto from = now_ns();
        const auto to = now_ns();
        std::fprintf(log, "%u %u %llu %llu\n", r.range().first(), r.range().count(), static_cast<unsigned long long>(from),
                     static_cast<unsigned long long>(to));
        r.release();
      }
      std::fclose(log);
      ::_exit(failures == 0 ? 0 : 1);
    }
    children.push_back(pid);
  }
  int clean = 0;
  for (const auto pid : children) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) ++clean;
  }
  CHECK(clean == processes);
  std::vector<grant> grants;
  for (int p = 0; p < processes; ++p) {
    std::ifstream in(log_dir / std::to_string(p));
    grant g{static_cast<std::uint32_t>(p), 0, 0, 0, 0};
    while (in >> g.first >> g.count >> g.from >> g.to) grants.push_back(g);
  }
  CHECK(grants.size() == processes * cycles);
  std::sort(grants.begin(), grants.end(), [](const grant& a, const grant& b) { return a.from < b.from; });
  std::size_t conflicts = 0;
  for (std::size_t i = 0; i < grants.size(); ++i) {
    for (std::size_t j = i + 1; j < grants.size() && grants[j].from <= grants[i].to; ++j) {
      const auto& a = grants[i];
      const auto& b = grants[j];
      if (a.process != b.process && a.first <= b.first + b.count - 1 && b.first <= a.first + a.count - 1) ++conflicts;
    }
  }
  CHECK(conflicts == 0);
  select_backend(backend_kind::automatic);
}

TEST_CASE("a store writer killed mid-write leaves the store as before or after, never broken") {
  if (::geteuid() != 0) PORTRES_SKIP("creating persistent reservations needs root");
  int kills = 0, readable = 0;
  for (int round = 0; round < 20; ++round) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // Create and remove blocks as fast as possible until killed.
      for (int i = 0;; ++i) {
        const port_range block(static_cast<std::uint16_t>(52000 + (i % 50) * 10), 5);
        std::error_code ec;
        persistent::create(protocol::udp, block, ec);
        persistent::remove(protocol::udp, block, ec);
      }
    }
    ::usleep(static_cast<useconds_t>(2000 + round * 700));
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    ++kills;
    std::error_code ec;
    const auto entries = detail::linux_store::load(ec);
    if (!ec && entries.size() <= 1) ++readable;
    // Whatever was left (at most the one block being created), clean up for the next round.
    for (const auto& e : entries) persistent::remove(e.proto, e.range, ec);
  }
  CHECK(kills == 20);
  CHECK(readable == 20);
}

TEST_CASE("state paths: symlinks and folders writable by others are refused") {
  const auto base = portres_test::scratch_dir() / "paths";
  fs::create_directories(base / "real");
  fs::create_symlink(base / "real", base / "link");
  CHECK(detail::linux_files::ensure_private_dir((base / "link").string()) == error::unsafe_path);
  CHECK(detail::linux_files::ensure_private_dir((base / "link").string()) == condition::access_denied);
  fs::create_directories(base / "open");
  ::chmod((base / "open").c_str(), 0777);
  CHECK(detail::linux_files::ensure_private_dir((base / "open").string()) == error::unsafe_path);
  CHECK_FALSE(detail::linux_files::ensure_private_dir((base / "fresh").string()));

  // A symlinked store folder, and a symlinked store file.
  const auto* original = std::getenv("PORTRES_STATE_DIR");
  const std::string saved = original ? original : "";
  ::setenv("PORTRES_STATE_DIR", (base / "link").c_str(), 1);
  std::error_code ec;
  persistent::list(protocol::tcp, ec);
  CHECK(ec == error::unsafe_path);
  ::setenv("PORTRES_STATE_DIR", (base / "real").c_str(), 1);
  std::ofstream(base / "elsewhere") << "tcp 50000 10\n";
  fs::create_symlink(base / "elsewhere", base / "real" / "persistent");
  persistent::list(protocol::tcp, ec);
  CHECK(ec == error::unsafe_path);
  ::setenv("PORTRES_STATE_DIR", saved.c_str(), 1);
}

TEST_CASE("hostile store files: truncated, garbage, oversized") {
  const auto dir = portres_test::scratch_dir() / "hostile";
  fs::create_directories(dir);
  ::chmod(dir.c_str(), 0755);
  const auto* original = std::getenv("PORTRES_STATE_DIR");
  const std::string saved = original ? original : "";
  ::setenv("PORTRES_STATE_DIR", dir.c_str(), 1);
  const auto store = dir / "persistent";
  std::error_code ec;
  for (const std::string& bad : {std::string("tcp 50000"), std::string("tcp 50000 10 extra"), std::string("sctp 1 1"),
                                std::string("tcp 0 10"), std::string("tcp 65530 10"), std::string("\xff\xfe\x00garbage", 10)}) {
    std::ofstream(store, std::ios::binary | std::ios::trunc) << bad;
    persistent::list(protocol::tcp, ec);
    CHECK(ec == error::malformed_state);
  }
  {
    std::ofstream out(store, std::ios::binary | std::ios::trunc);
    const std::string line = "# padding padding padding padding padding padding padding padding\n";
    for (int i = 0; i < 20000; ++i) out << line; // over 1 MiB
  }
  persistent::list(protocol::tcp, ec);
  CHECK(ec == error::malformed_state);
  fs::remove(store);
  CHECK(persistent::list(protocol::tcp, ec).empty());
  CHECK_FALSE(ec);
  ::setenv("PORTRES_STATE_DIR", saved.c_str(), 1);
}
