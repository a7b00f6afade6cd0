// The per-user registry against a hostile user and a busy machine: each case
// guards one defect of the trust issue (listing that deleted live records,
// files other users could lock, a parent folder swapped for a symlink,
// kernel ownership shared between namespaces, a damaged store stopping
// runtime grants, temp-file pile-up, reservations that starve the ephemeral
// range). Cases that need root or a private namespace skip visibly.
#include "portres/portres.hpp"

#include "core/registry.hpp"
#include "linux/registry.hpp"
#include "support.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace portres;
using portres::detail::blocking;
namespace fs = std::filesystem;

namespace {

constexpr const char* reserved_ports = "/proc/sys/net/ipv4/ip_local_reserved_ports";
constexpr const char* port_range_sysctl = "/proc/sys/net/ipv4/ip_local_port_range";

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

fs::path fresh_dir(const std::string& name) {
  const auto dir = portres_test::scratch_dir() / name;
  fs::remove_all(dir);
  return dir;
}

std::shared_ptr<detail::linux_registry> registry_at(const fs::path& dir) {
  std::error_code ec;
  auto r = detail::make_linux_registry(dir.string(), ec);
  REQUIRE_MESSAGE(r, ec.message());
  return r;
}

struct grant_result {
  std::unique_ptr<detail::registry::lease> lease;
  port_range granted;
  std::error_code ec;
};

grant_result grant(const std::shared_ptr<detail::linux_registry>& r, port_range request, std::uint64_t token) {
  grant_result out;
  out.lease = detail::as_registry(r)->grant(protocol::tcp, request, reservation_token{token}, blocking::allowed,
                                            out.granted, out.ec);
  return out;
}

// Runs `body` in a forked child as user nobody; returns its exit status (0 = all checks held).
template <class Body>
int as_nobody(Body body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(90);
    ::_exit(body());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
}

} // namespace

TEST_CASE("registry trust: listing never removes a record and only a registry operation under the lock does") {
  const auto dir = fresh_dir("listing");
  auto reg = registry_at(dir);
  // One record a live holder has, and one nobody holds (its holder died).
  auto live = grant(reg, port_range(50100, 4), 0xbb);
  REQUIRE(!live.ec);
  write_text(dir / "r-tcp-00000000000000aa", "v2 tcp 50000 4 999999 0\n");
  std::error_code ec;
  const auto listed = detail::linux_runtime_entries(*reg, ec);
  CHECK(!ec);
  CHECK(listed.size() == 1); // the dead one is not reported as live...
  CHECK(fs::exists(dir / "r-tcp-00000000000000aa")); // ...and listing left it alone
  auto next = grant(reg, port_range(50000, 4), 0xcc); // its block is free again
  CHECK(!next.ec);
  CHECK(!fs::exists(dir / "r-tcp-00000000000000aa")); // removed under the lock
  // No record is ever visible before its holder locked it: publication is a
  // rename of an already locked file, so no pending name is left behind.
  for (const auto& entry : fs::directory_iterator(dir)) {
    CHECK(entry.path().filename().string().rfind("new-", 0) != 0);
  }
}

TEST_CASE("registry trust: a pending record left by a writer killed mid-grant is removed, never published") {
  const auto dir = fresh_dir("pending");
  auto reg = registry_at(dir);
  write_text(dir / "new-00000000000000dd-999999", "v2 tcp 50200 4 999999 0\n");
  auto g = grant(reg, port_range(50200, 4), 0xdd);
  CHECK(!g.ec); // its block was never granted
  CHECK(!fs::exists(dir / "new-00000000000000dd-999999"));
}

TEST_CASE("registry trust: another user can neither open nor lock the registry's files") {
  if (::geteuid() != 0) PORTRES_SKIP("needs root to switch to user nobody");
  const auto dir = fresh_dir("hostile");
  fs::create_directories(dir);
  ::chmod(dir.c_str(), 0755); // as an older portres left it
  auto reg = registry_at(dir);
  struct stat st {};
  REQUIRE(::stat(dir.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700); // narrowed on open
  auto g = grant(reg, port_range(50300, 4), 0xee);
  REQUIRE(!g.ec);
  const auto lock = (dir / "lock").string();
  const auto record = (dir / "r-tcp-00000000000000ee").string();
  const int status = as_nobody([&] {
    // Neither the folder lock nor a live record can be opened, so neither can be flocked.
    if (::open(lock.c_str(), O_RDONLY) >= 0) return 1;
    if (::open(record.c_str(), O_RDONLY) >= 0) return 2;
    if (::opendir(dir.c_str()) != nullptr) return 3; // names (tokens) are not readable either
    return 0;
  });
  CHECK(status == 0);
  // And the owner's next grant does not wait on anyone.
  auto again = grant(reg, port_range(50310, 4), 0xef);
  CHECK(!again.ec);
}

TEST_CASE("registry trust: a folder owned by another user is refused") {
  if (::geteuid() != 0) PORTRES_SKIP("needs root to create a folder owned by nobody");
  const auto dir = fresh_dir("foreign");
  fs::create_directories(dir);
  REQUIRE(::chown(dir.c_str(), 65534, 65534) == 0);
  std::error_code ec;
  CHECK(!detail::make_linux_registry(dir.string(), ec));
  CHECK(ec == error::unsafe_path);
}

TEST_CASE("registry trust: a parent folder swapped for a symlink does not redirect the registry") {
  const auto base = fresh_dir("swap");
  const auto parent = base / "parent";
  const auto elsewhere = base / "elsewhere";
  fs::create_directories(parent);
  fs::create_directories(elsewhere / "reg");
  auto reg = registry_at(parent / "reg");
  // The owner of `parent` swaps it for a symlink to another folder.
  fs::rename(parent, base / "moved");
  fs::create_directory_symlink(elsewhere, parent);
  auto g = grant(reg, port_range(50400, 4), 0x1234);
  REQUIRE(!g.ec);
  CHECK(fs::exists(base / "moved" / "reg" / "r-tcp-0000000000001234")); // still the folder it opened
  CHECK(fs::is_empty(elsewhere / "reg"));                              // nothing written through the link
  g.lease.reset();
  CHECK(!fs::exists(base / "moved" / "reg" / "r-tcp-0000000000001234"));
  // A registry folder that is itself a symlink is refused outright.
  std::error_code ec;
  fs::create_directory_symlink(elsewhere / "reg", base / "link");
  CHECK(!detail::make_linux_registry((base / "link").string(), ec));
  CHECK(ec == error::unsafe_path);
}

TEST_CASE("registry trust: two network namespaces sharing a folder keep their own kernel lists") {
  if (!portres_test::in_private_netns()) PORTRES_SKIP("needs root and a private network namespace");
  const auto dir = fresh_dir("netns");
  write_text(port_range_sysctl, "40000 49999\n");
  write_text(reserved_ports, "\n");
  auto reg = registry_at(dir);
  auto a = grant(reg, port_range(41000, 10), 0xa1);
  REQUIRE(!a.ec);
  CHECK(read_text(reserved_ports).find("41000-41009") != std::string::npos);
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::unshare(CLONE_NEWNET) != 0) ::_exit(80);
    write_text(port_range_sysctl, "40000 49999\n");
    std::error_code child_ec;
    auto child = detail::make_linux_registry(dir.string(), child_ec);
    if (!child) ::_exit(81);
    {
      auto b = grant(child, port_range(42000, 10), 0xb1);
      if (b.ec) ::_exit(82);
      const auto mine = read_text(reserved_ports);
      // Only this namespace's block: the other namespace's live block is not ours to reserve here.
      if (mine.find("42000-42009") == std::string::npos || mine.find("41000") != std::string::npos) ::_exit(83);
    }
    if (read_text(reserved_ports) != "\n") ::_exit(84); // released: nothing left behind here
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  // The other namespace's grant and release touched neither this list nor its ownership.
  CHECK(read_text(reserved_ports).find("42000") == std::string::npos);
  a.lease.reset();
  CHECK(read_text(reserved_ports) == "\n"); // nothing leaked
}

TEST_CASE("registry trust: a corrupt store does not stop runtime reservations and is reported and kept") {
  const auto state = fs::path(std::getenv("PORTRES_STATE_DIR"));
  fs::create_directories(state);
  const auto store = state / "persistent";
  const std::string garbage = "tcp 50000 twenty\n\x01\x02 not a store\n";
  write_text(store, garbage);
  auto restore = [&] { fs::remove(store); };
  asio::io_context io;
  std::error_code ec;
  auto block = portres::acquire(io.get_executor(), protocol::tcp, port_range::wildcard(8), ec);
  CHECK(!ec); // runtime grants keep working
  const auto caps = portres::capabilities();
  CHECK(caps.damage.find("persistent") != std::string::npos);
  if (::geteuid() == 0) {
    portres::persistent::create(protocol::tcp, port_range(50500, 4), ec);
    CHECK(ec == error::malformed_state); // never written over
  }
  CHECK(read_text(store) == garbage);
  restore();
}

TEST_CASE("registry trust: temp files of writers killed mid-write do not pile up") {
  if (::geteuid() != 0) PORTRES_SKIP("persistent create needs root");
  const auto state = fs::path(std::getenv("PORTRES_STATE_DIR"));
  fs::create_directories(state);
  for (int i = 0; i < 5; ++i) write_text(state / ("persistent.tmp." + std::to_string(4000000 + i)), "partial");
  std::error_code ec;
  portres::persistent::create(protocol::tcp, port_range(50600, 4), ec);
  REQUIRE(!ec);
  int temps = 0;
  for (const auto& entry : fs::directory_iterator(state)) {
    temps += entry.path().filename().string().find(".tmp.") != std::string::npos ? 1 : 0;
  }
  CHECK(temps == 0);
  portres::persistent::remove(protocol::tcp, port_range(50600, 4), ec);
  CHECK(!ec);
}

TEST_CASE("registry trust: a reservation that would starve the ephemeral range is refused naming what remains") {
  if (!portres_test::in_private_netns()) PORTRES_SKIP("needs root and a private network namespace");
  write_text(port_range_sysctl, "40000 40999\n");
  write_text(reserved_ports, "\n");
  auto restore = [] { write_text(port_range_sysctl, "32768 60999\n"); };
  std::error_code ec;
  portres::persistent::create(protocol::tcp, port_range(40000, 600), ec);
  CHECK(ec == condition::invalid_argument);
  CHECK(ec.message().find("only 400 ports") != std::string::npos);
  // A runtime block is held to the same rule.
  const auto dir = fresh_dir("share");
  auto reg = registry_at(dir);
  auto g = grant(reg, port_range(40100, 501), 0x5a);
  CHECK(g.ec == condition::invalid_argument);
  auto fits = grant(reg, port_range(40100, 500), 0x5b);
  CHECK(!fits.ec);
  fits.lease.reset();
  // The CLI's --force (PORTRES_MIN_EPHEMERAL_SHARE=0) overrides.
  ::setenv("PORTRES_MIN_EPHEMERAL_SHARE", "0", 1);
  portres::persistent::create(protocol::tcp, port_range(40000, 600), ec);
  ::unsetenv("PORTRES_MIN_EPHEMERAL_SHARE");
  CHECK(!ec);
  portres::persistent::remove(protocol::tcp, port_range(40000, 600), ec);
  CHECK(!ec);
  restore();
}
