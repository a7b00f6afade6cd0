// The per-user Linux registry under a hostile or careless neighbour:
// private files, a folder used through one descriptor, per-namespace kernel
// ownership, a damaged store that does not stop runtime reservations, no
// leftovers after kills, a listing that removes nothing.
#include "portres/portres.hpp"

#include "linux/registry.hpp"
#include "support.hpp"

#include <asio/io_context.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace portres;
namespace fs = std::filesystem;

namespace {

struct native_selected {
  native_selected() { select_backend(backend_kind::native); }
  ~native_selected() { select_backend(backend_kind::automatic); }
};

fs::path run_dir() { return portres_test::scratch_dir() / "run"; }

int count_records(const fs::path& dir) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.path().filename().string().rfind("r-", 0) == 0;
  return n;
}

std::string read_sysctl(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// Runs `body` in a forked child; returns its exit status (0 = success).
template <class Body>
int in_child(Body body) {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(body());
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

// A child that holds a wildcard block until killed.
pid_t hold_block(port_range request) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    asio::io_context io;
    select_backend(backend_kind::native);
    std::error_code ec;
    auto r = acquire(io.get_executor(), protocol::tcp, request, ec);
    const char c = ec ? 'e' : 'k';
    (void)!::write(fds[1], &c, 1);
    ::pause();
    ::_exit(0);
  }
  ::close(fds[1]);
  char c = 0;
  (void)!::read(fds[0], &c, 1);
  ::close(fds[0]);
  REQUIRE(c == 'k');
  return pid;
}

void kill_child(pid_t pid) {
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

} // namespace

TEST_CASE("registry trust: the registry folder and its files are private to their user") {
  asio::io_context io;
  native_selected native;
  auto r = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(4));
  struct stat st {};
  REQUIRE(::stat(run_dir().c_str(), &st) == 0);
  CHECK((st.st_mode & 077) == 0);
  for (const auto& e : fs::directory_iterator(run_dir())) {
    REQUIRE(::lstat(e.path().c_str(), &st) == 0);
    INFO(e.path().string());
    CHECK((st.st_mode & 077) == 0);
  }
  if (::geteuid() != 0) {
    PORTRES_SKIP("hostile-user part needs root (setuid to nobody)");
  }
  // Another user cannot open the lock file or a record to flock it.
  ::chmod(portres_test::scratch_dir().c_str(), 0711);
  const auto lock = (run_dir() / "lock").string();
  const int status = in_child([&] {
    if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0)
      return 2;
    return ::open(lock.c_str(), O_RDONLY) < 0 ? 0 : 1;
  });
  ::chmod(portres_test::scratch_dir().c_str(), 0700);
  CHECK(status == 0);
}

TEST_CASE("registry trust: a folder swapped for a symlink after opening is never followed") {
  asio::io_context io;
  native_selected native;
  { auto warm = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(1)); } // the registry is open
  const auto moved = portres_test::scratch_dir() / "run.moved";
  const auto elsewhere = portres_test::scratch_dir() / "elsewhere";
  fs::create_directory(elsewhere);
  fs::rename(run_dir(), moved);
  fs::create_directory_symlink(elsewhere, run_dir());
  {
    auto r = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(3));
    CHECK(fs::is_empty(elsewhere));
    CHECK(count_records(moved) >= 1);
  }
  fs::remove(run_dir());
  fs::rename(moved, run_dir());
  fs::remove_all(elsewhere);
}

TEST_CASE("registry trust: a damaged store does not stop runtime reservations and is reported") {
  asio::io_context io;
  native_selected native;
  const auto store = portres_test::scratch_dir() / "state" / "persistent";
  fs::create_directories(store.parent_path());
  std::ofstream(store) << "tcp 50000 twenty\n";
  std::error_code ec;
  auto r = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(8), ec);
  CHECK_FALSE(ec);
  const auto caps = capabilities();
  CHECK(caps.state_damage.find("persistent store") != std::string::npos);
  r.release();
  CHECK(read_sysctl(store.string()) == "tcp 50000 twenty"); // the bad copy is kept as it is
  fs::remove(store);
  CHECK(capabilities().state_damage.empty());
}

TEST_CASE("registry trust: capabilities say whose processes a runtime reservation excludes") {
  CHECK_FALSE(capabilities().coordination.empty());
  if (::geteuid() != 0) {
    CHECK(capabilities().coordination.find("this user's processes only") != std::string::npos);
    return;
  }
  const auto dir = (portres_test::scratch_dir() / "user-run").string();
  ::mkdir(dir.c_str(), 0700);
  ::chown(dir.c_str(), 65534, 65534);
  ::chmod(portres_test::scratch_dir().c_str(), 0711);
  const int status = in_child([&] {
    if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0)
      return 2;
    ::setenv("PORTRES_RUNTIME_DIR", dir.c_str(), 1);
    // The mode is chosen once per process (in the parent, as root): ask the scope itself.
    const auto scope = portres::detail::linux_registry_scope();
    return scope.find("this user's processes only") != std::string::npos ? 0 : 1;
  });
  ::chmod(portres_test::scratch_dir().c_str(), 0700);
  CHECK(status == 0);
}

TEST_CASE("registry trust: listing removes nothing, and stale temporary files go at the next write") {
  asio::io_context io;
  native_selected native;
  const pid_t holder = hold_block(port_range::wildcard(6));
  const int before = count_records(run_dir());
  kill_child(holder);
  std::error_code ec;
  list_runtime(ec);
  CHECK_FALSE(ec);
  CHECK(count_records(run_dir()) == before); // the dead holder's record waits for a locked operation
  { auto r = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(1)); }
  CHECK(count_records(run_dir()) == before - 1);

  if (::geteuid() != 0) {
    PORTRES_SKIP("the persistent-store part needs root");
  }
  const auto state = portres_test::scratch_dir() / "state";
  fs::create_directories(state);
  for (int i = 0; i < 5; ++i) std::ofstream(state / ("persistent.tmp." + std::to_string(90000 + i))) << "x";
  persistent::create(protocol::tcp, {21000, 2});
  persistent::remove(protocol::tcp, {21000, 2});
  int temporaries = 0;
  for (const auto& e : fs::directory_iterator(state)) temporaries += e.path().filename().string().find(".tmp.") != std::string::npos;
  CHECK(temporaries == 0);
}

TEST_CASE("registry trust: two network namespaces sharing one folder keep their own kernel entries") {
  if (!portres_test::in_private_netns()) {
    PORTRES_SKIP("needs root and a private network namespace");
  }
  asio::io_context io;
  native_selected native;
  const char* range_sysctl = "/proc/sys/net/ipv4/ip_local_port_range";
  const char* reserved = "/proc/sys/net/ipv4/ip_local_reserved_ports";
  const auto original_range = read_sysctl(range_sysctl);
  std::ofstream(range_sysctl) << "40000 40009\n";
  std::ofstream(reserved) << "\n";
  auto block = acquire(io.get_executor(), protocol::tcp, port_range{40000, 5});
  int go[2], done[2];
  REQUIRE(::pipe(go) == 0);
  REQUIRE(::pipe(done) == 0);
  const pid_t child = ::fork();
  if (child == 0) {
    if (::unshare(CLONE_NEWNET) != 0) ::_exit(2);
    std::ofstream(range_sysctl) << "40000 40009\n";
    asio::io_context child_io;
    { auto one = acquire(child_io.get_executor(), protocol::udp, port_range::wildcard(1)); } // a registry operation here
    (void)!::write(done[1], "1", 1);
    char c;
    (void)!::read(go[0], &c, 1); // the parent released its block meanwhile
    { auto one = acquire(child_io.get_executor(), protocol::udp, port_range::wildcard(1)); }
    ::_exit(read_sysctl(reserved).empty() ? 0 : 1);
  }
  char c;
  (void)!::read(done[0], &c, 1);
  block.release();
  CHECK(read_sysctl(reserved).empty());
  (void)!::write(go[1], "1", 1);
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0)); // nothing leaked in the child's namespace
  for (int fd : {go[0], go[1], done[0], done[1]}) ::close(fd);
  std::ofstream(range_sysctl) << original_range << "\n";
}

TEST_CASE("registry trust: a block leaving less than half of the ephemeral range free is refused") {
  if (!portres_test::in_private_netns()) {
    PORTRES_SKIP("needs root and a private network namespace");
  }
  asio::io_context io;
  native_selected native;
  const char* range_sysctl = "/proc/sys/net/ipv4/ip_local_port_range";
  const char* reserved = "/proc/sys/net/ipv4/ip_local_reserved_ports";
  const auto original_range = read_sysctl(range_sysctl);
  std::ofstream(range_sysctl) << "40000 40009\n";
  std::ofstream(reserved) << "40009\n"; // someone else's entry counts too
  std::error_code ec;
  acquire(io.get_executor(), protocol::tcp, port_range{40000, 5}, ec);
  CHECK(ec == error::ephemeral_starved); // 4 of 10 would remain
  CHECK(read_sysctl(reserved) == "40009");
  auto four = acquire(io.get_executor(), protocol::tcp, port_range{40000, 4}, ec);
  CHECK_FALSE(ec); // 5 of 10 remain
  persistent::create(protocol::udp, {40004, 2}, ec);
  CHECK(ec == error::ephemeral_starved);
  ::setenv("PORTRES_EPHEMERAL_FREE_SHARE", "0", 1); // what `portres add --force` does
  persistent::create(protocol::udp, {40004, 2}, ec);
  CHECK_FALSE(ec);
  persistent::remove(protocol::udp, {40004, 2}, ec);
  ::unsetenv("PORTRES_EPHEMERAL_FREE_SHARE");
  four.release();
  std::ofstream(reserved) << "\n";
  std::ofstream(range_sysctl) << original_range << "\n";
}

TEST_CASE("registry trust: a port bound by another program but not listening is seen as in use") {
  asio::io_context io;
  native_selected native;
  // A plain socket bound to a port, neither listening nor connected.
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(s >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::uint16_t port = 0;
  for (std::uint16_t candidate = 23000; candidate < 23100 && port == 0; ++candidate) {
    a.sin_port = htons(candidate);
    if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) port = candidate;
  }
  REQUIRE(port != 0);
  std::error_code ec;
  acquire(io.get_executor(), protocol::tcp, port_range{static_cast<std::uint16_t>(port - 2), 5}, ec);
  CHECK(ec == condition::in_use);
  ::close(s);
  auto r = acquire(io.get_executor(), protocol::tcp, port_range{static_cast<std::uint16_t>(port - 2), 5}, ec);
  CHECK_FALSE(ec);
}
