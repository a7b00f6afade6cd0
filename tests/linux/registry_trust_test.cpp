// The per-user registry under attack: other namespaces, unsafe folders, FIFOs, forks, concurrent writers.
#include "portres/portres.hpp"

#include "linux/state_files.hpp"
#include "support.hpp"

#include <asio/io_context.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace portres;
namespace fs = std::filesystem;

namespace {
std::string first_line(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}
} // namespace

// Defect 5: a namespace must never reserve (or keep) another namespace's block,
// even when it does no further registry operation afterwards.
TEST_CASE("registry: a namespace keeps no other namespace's block once both are released") {
  if (!portres_test::in_private_netns()) {
    PORTRES_SKIP("needs root and a private network namespace");
  }
  asio::io_context io;
  select_backend(backend_kind::native);
  const char* range_sysctl = "/proc/sys/net/ipv4/ip_local_port_range";
  const char* reserved = "/proc/sys/net/ipv4/ip_local_reserved_ports";
  const auto original_range = first_line(range_sysctl);
  std::ofstream(range_sysctl) << "40000 40009\n";
  std::ofstream(reserved) << "\n";
  auto mine = acquire(io.get_executor(), protocol::tcp, port_range{40000, 2});
  int acquired[2], go[2];
  REQUIRE(::pipe(acquired) == 0);
  REQUIRE(::pipe(go) == 0);
  const pid_t child = ::fork();
  if (child == 0) {
    if (::unshare(CLONE_NEWNET) != 0) ::_exit(2);
    std::ofstream(range_sysctl) << "40000 40009\n";
    asio::io_context child_io;
    std::error_code ec;
    auto theirs = acquire(child_io.get_executor(), protocol::tcp, port_range{40005, 2}, ec);
    if (ec) ::_exit(3);
    const bool foreign_reserved = first_line(reserved).find("40000") != std::string::npos;
    (void)!::write(acquired[1], "1", 1);
    char c;
    (void)!::read(go[0], &c, 1); // the parent released its block meanwhile
    theirs.release();
    ::_exit(foreign_reserved ? 1 : 0);
  }
  ::close(acquired[1]); // a child that fails says so by closing its end: no wait for ever
  ::close(go[0]);
  char c = 0;
  CHECK(::read(acquired[0], &c, 1) == 1);
  mine.release();
  (void)!::write(go[1], "1", 1);
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0)); // the child's namespace never reserved our block
  CHECK(first_line(reserved).empty()); // nothing of the child's namespace stays in ours
  for (int fd : {acquired[0], go[1]}) ::close(fd);
  std::ofstream(reserved) << "\n";
  std::ofstream(range_sysctl) << original_range << "\n";
}

// Defect 2: a folder others can write into may already hold their files (a
// lock they flock, a FIFO named like a record): it must be refused, not
// silently narrowed to 0700 (imagine PORTRES_RUNTIME_DIR=/tmp).
TEST_CASE("registry: a world-writable registry folder is refused, not narrowed") {
  const auto dir = portres_test::scratch_dir() / "shared-run";
  fs::create_directories(dir);
  ::chmod(dir.c_str(), 01777);
  std::error_code ec;
  auto fd = portres::detail::linux_files::open_private_dir(dir.string(), ec);
  CHECK(ec == error::unsafe_path);
  struct stat st {};
  REQUIRE(::stat(dir.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 01777); // the folder's modes are left alone
  fs::remove_all(dir);
}

// Records are opened without O_NONBLOCK and without checking the file type or
// owner: a FIFO named like a record (left by anyone who could ever write into
// the folder) hangs every acquire and every listing.
TEST_CASE("registry: a FIFO named like a record does not hang acquire or listing") {
  asio::io_context io;
  select_backend(backend_kind::native);
  { auto warm = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(1)); } // the folder exists
  const auto fifo = portres_test::scratch_dir() / "run" / "r-tcp-0123456789abcdef";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const pid_t child = ::fork();
  if (child == 0) {
    ::alarm(5); // a hang ends as SIGALRM
    asio::io_context child_io;
    std::error_code ec;
    { auto r = acquire(child_io.get_executor(), protocol::tcp, port_range::wildcard(2), ec); }
    (void)list_runtime(ec);
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  fs::remove(fifo);
}

// A forked child that lets an inherited reservation go (a pre-forked worker
// leaving the scope) must not free the parent's block: drop() unlinks the
// record by name whichever process calls it.
TEST_CASE("registry: a forked child's release does not free its parent's block") {
  asio::io_context io;
  select_backend(backend_kind::native);
  auto held = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(4));
  const pid_t child = ::fork();
  if (child == 0) {
    { auto inherited = std::move(held); }
    ::_exit(0);
  }
  ::waitpid(child, nullptr, 0);
  std::error_code ec;
  auto second = acquire(io.get_executor(), protocol::tcp, held.range(), ec);
  CHECK(ec); // the parent still holds it: a second grant would be a double grant
}

// Two root processes with different registry folders (or a registry next to
// portresd) must not lose each other's persistent blocks: the store has its own lock.
TEST_CASE("registry: concurrent persistent writers under different registry folders lose nothing") {
  if (!portres_test::in_private_netns()) PORTRES_SKIP("needs root and a private network namespace");
  constexpr int per_writer = 30;
  std::vector<pid_t> writers;
  for (int w = 0; w < 2; ++w) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      const auto dir = portres_test::scratch_dir() / ("writer-run-" + std::to_string(w));
      ::setenv("PORTRES_RUNTIME_DIR", dir.c_str(), 1);
      int failures = 0;
      for (int i = 0; i < per_writer; ++i) {
        std::error_code ec;
        const auto first = static_cast<std::uint16_t>(20000 + w * 1000 + i * 2);
        persistent::create(protocol::udp, port_range(first, 1), ec);
        if (ec) ++failures;
      }
      ::_exit(failures == 0 ? 0 : 1);
    }
    writers.push_back(pid);
  }
  for (const pid_t pid : writers) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  std::error_code ec;
  const auto stored = persistent::list(protocol::udp, ec);
  CHECK(!ec);
  CHECK(stored.size() == std::size_t{2 * per_writer});
  for (const auto& r : stored) persistent::remove(protocol::udp, r.range, ec);
}
