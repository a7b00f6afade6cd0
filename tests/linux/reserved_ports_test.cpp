// Kernel enforcement (linux/reserved_ports.hpp, linux/reserved_ports_owner.hpp),
// the one implementation portresd and root's per-user registry share: the
// list always holds exactly what its owners believe they wrote, whatever its
// length, or the grant fails and says so. Root in the test's private
// namespaces (the list is per network namespace).
#include "linux/broker_support.hpp"
#include "linux/probe_support.hpp"

#include "core/port_bitmap.hpp"
#include "linux/registry.hpp"
#include "linux/reserved_ports.hpp"
#include "linux/state_files.hpp"
#include "platform.hpp"
#include "portres/linux_error.hpp"

#include <gsl/gsl>

#include <fstream>
#include <memory>
#include <vector>

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>

using namespace portres;
using namespace portres_test;
using portres::detail::blocking;
using portres::detail::port_bitmap;

namespace {

port_bitmap kernel_list() {
  return portres::detail::linux_files::parse_port_list(read_sysctl(reserved_ports_path)).value_or(port_bitmap{});
}

std::string differences(const port_bitmap& want, const port_bitmap& got) {
  port_bitmap missing = want;
  missing.remove(got);
  port_bitmap extra = got;
  extra.remove(want);
  return "missing " + portres::detail::linux_files::format_port_list(missing) + "; unexpected " +
         portres::detail::linux_files::format_port_list(extra);
}

void raise_file_limit() {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &limit);
}

// In a child about to exec: a private mount namespace with a small tmpfs on
// `where`, filled so that `free_pages` pages stay free.
bool mount_full_tmpfs(const std::string& where, int free_pages) {
  if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return false;
  if (::mount("portres-full", where.c_str(), "tmpfs", 0, "size=64k,mode=0700") != 0) return false;
  const auto filler = where + "/filler";
  const int fd = ::open(filler.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  static char page[4096];
  off_t size = 0;
  for (int i = 0; i < 64 && ::write(fd, page, sizeof page) == static_cast<ssize_t>(sizeof page); ++i) size += 4096;
  const bool ok = ::ftruncate(fd, size - 4096 * free_pages) == 0;
  ::close(fd);
  return ok;
}

} // namespace

TEST_CASE("kernel enforcement: portresd writes a list longer than a page whole, and keeps others' entries") {
  if (const char* why = broker_skip_reason()) PORTRES_SKIP(why);
  raise_file_limit();
  const auto eph = portres::detail::platform::ephemeral_range();
  REQUIRE(eph.first() <= 33000);
  REQUIRE(eph.last() >= 60999);
  // An administrator's own entry, there before the daemon.
  write_sysctl(reserved_ports_path, "60700-60710");
  const auto clear = gsl::finally([] { write_sysctl(reserved_ports_path, ""); });
  test_daemon daemon("long");
  auto broker = daemon.client();
  std::error_code ec;
  port_range granted;
  port_bitmap want;
  want.set_range(60700, 60710);
  auto runtime = broker->grant(protocol::tcp, port_range(60900, 100), reservation_token{0x1}, blocking::allowed, granted, ec);
  REQUIRE_MESSAGE(!ec, ec);
  want.set_range(60900, 60999);
  broker->persistent_create(protocol::tcp, port_range(60500, 10), ec);
  REQUIRE_MESSAGE(!ec, ec);
  const auto remove_persistent = gsl::finally([&] {
    std::error_code ignored;
    broker->persistent_remove(protocol::tcp, port_range(60500, 10), ignored);
  });
  want.set_range(60500, 60509);
  // 800 one-port blocks two ports apart: 800 entries, about 4.8 KB of list.
  std::vector<std::unique_ptr<portres::detail::registry::lease>> leases;
  for (unsigned i = 0; i < 800; ++i) {
    const port_range one(static_cast<std::uint16_t>(33000 + 2 * i), 1);
    leases.push_back(broker->grant(protocol::tcp, one, reservation_token{0x100 + i}, blocking::allowed, granted, ec));
    REQUIRE_MESSAGE(!ec, "grant " << i << ": " << ec);
    want.set(one.first());
  }
  auto got = kernel_list();
  CHECK_MESSAGE(got == want, differences(want, got));
  // Half of them go: removals from a list of several pages.
  port_bitmap gone;
  for (unsigned i = 0; i < 800; i += 2) {
    leases[i].reset();
    gone.set(33000 + 2 * i);
  }
  want.remove(gone);
  CHECK(eventually([&] { return kernel_list() == want; }));
  got = kernel_list();
  CHECK_MESSAGE(got == want, differences(want, got));
}

TEST_CASE("kernel enforcement: root's per-user registry writes a list longer than a page whole") {
  if (::geteuid() != 0 || !in_private_netns()) PORTRES_SKIP("needs root and a private network namespace");
  const auto eph = portres::detail::platform::ephemeral_range();
  REQUIRE(eph.first() <= 33000);
  REQUIRE(eph.last() >= 42000);
  // An administrator's 700 entries (about 4.2 KB of list), there before.
  port_bitmap admin;
  for (unsigned i = 0; i < 700; ++i) admin.set(40000 + 2 * i);
  write_sysctl(reserved_ports_path, portres::detail::linux_files::format_port_list(admin));
  const auto clear = gsl::finally([] { write_sysctl(reserved_ports_path, ""); });
  REQUIRE(kernel_list() == admin);
  std::string reason;
  auto files = portres::detail::linux_registry_instance(reason);
  REQUIRE_MESSAGE(files, reason);
  auto registry = portres::detail::as_registry(files);
  port_bitmap want = admin;
  std::vector<std::unique_ptr<portres::detail::registry::lease>> leases;
  std::error_code ec;
  port_range granted;
  for (unsigned i = 0; i < 40; ++i) {
    const port_range one(static_cast<std::uint16_t>(33000 + 2 * i), 1);
    leases.push_back(registry->grant(protocol::tcp, one, reservation_token{0x200 + i}, blocking::allowed, granted, ec));
    REQUIRE_MESSAGE(!ec, "grant " << i << ": " << ec);
    want.set(one.first());
  }
  auto got = kernel_list();
  CHECK_MESSAGE(got == want, differences(want, got));
  for (auto& l : leases) registry->release(*l, blocking::allowed, ec);
  got = kernel_list();
  CHECK_MESSAGE(got == admin, differences(admin, got));
}

TEST_CASE("kernel enforcement: a list of any length is written exactly, additions never drop an entry") {
  if (::geteuid() != 0 || !in_private_netns()) PORTRES_SKIP("needs root and a private network namespace");
  const auto clear = gsl::finally([] { write_sysctl(reserved_ports_path, ""); });
  port_bitmap every_other;
  for (std::uint32_t p = 20000; p < 30000; p += 2) every_other.set(p); // 5,000 entries, ~30 KB
  std::string why;
  CHECK_MESSAGE(!portres::detail::reserved_ports::write_exact(every_other, kernel_list(), why), why);
  CHECK(kernel_list() == every_other);
  port_bitmap more = every_other;
  more.set_range(40000, 40010);
  CHECK_MESSAGE(!portres::detail::reserved_ports::write_exact(more, kernel_list(), why), why);
  CHECK(kernel_list() == more);
  port_bitmap fewer = more;
  fewer.remove([] {
    port_bitmap b;
    b.set_range(20000, 24999);
    return b;
  }());
  CHECK_MESSAGE(!portres::detail::reserved_ports::write_exact(fewer, kernel_list(), why), why);
  CHECK(kernel_list() == fewer);
  CHECK_MESSAGE(!portres::detail::reserved_ports::write_exact(port_bitmap{}, kernel_list(), why), why);
  CHECK(kernel_list() == port_bitmap{});
}

TEST_CASE("kernel enforcement: portresd answers a grant it could not enforce with the failure (its folder full)") {
  if (const char* why = broker_skip_reason()) PORTRES_SKIP(why);
  const auto eph = portres::detail::platform::ephemeral_range();
  const auto log = (scratch_dir() / "full.log").string();
  // The namespace folder on a full file system: the record of what the
  // daemon adds to the list cannot be written.
  test_daemon daemon("full", {}, {}, 0, log, [] {
    ::setenv("PORTRES_DAEMON_DIR", "/run/portresd", 1); // the same folder for older daemons
    return mount_full_tmpfs("/run/portresd", 0);
  });
  auto broker = daemon.client();
  const port_range inside(static_cast<std::uint16_t>(eph.first() + 400), 10);
  std::error_code ec;
  port_range granted;
  auto lease = broker->grant(protocol::tcp, inside, reservation_token{0xfe}, blocking::allowed, granted, ec);
  const bool listed = kernel_list().test(inside.first());
  CHECK_MESSAGE((ec ? !listed : listed), "granted " << (ec ? "no" : "yes") << ", listed " << listed);
  CHECK_MESSAGE(ec == linux_error::enforcement_failed, ec);
  CHECK(!lease);
  // The daemon says why, once.
  std::error_code read_ec;
  const auto text = portres::detail::linux_files::read_file(log, read_ec).value_or("");
  CHECK_MESSAGE(text.find("No space left on device") != std::string::npos, text);
  // Outside the ephemeral range nothing needs the list: still granted.
  const port_range outside(static_cast<std::uint16_t>(eph.first() - 1000), 4);
  auto fine = broker->grant(protocol::tcp, outside, reservation_token{0xff}, blocking::allowed, granted, ec);
  CHECK_MESSAGE(!ec, ec);
}

TEST_CASE("kernel enforcement: root's registry fails a grant whose kernel entries it cannot record, leaving none") {
  if (const char* why = probe_skip_reason()) PORTRES_SKIP(why);
  const auto eph = portres::detail::platform::ephemeral_range();
  const auto run = (scratch_dir() / "full-run").string();
  ::mkdir(run.c_str(), 0700);
  // One page left: the grant's own record fits, the record of the kernel
  // entries it adds does not.
  probe root(0, {"PORTRES_RUNTIME_DIR=" + run, "PORTRES_BROKER=off"}, {}, [&] { return mount_full_tmpfs(run, 1); });
  const port_range inside(static_cast<std::uint16_t>(eph.first() + 600), 4);
  const auto answer = root.ask("acquire tcp " + std::to_string(inside.first()) + " 4");
  if (answer.rfind("ok", 0) == 0) CHECK(root.ask("release 0") == "ok");
  INFO(answer);
  CHECK(answer.rfind("error portres.linux " + std::to_string(static_cast<int>(linux_error::enforcement_failed)), 0) == 0);
  CHECK_MESSAGE(!kernel_list().test(inside.first()), read_sysctl(reserved_ports_path));
}
