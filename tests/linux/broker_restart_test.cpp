// portresd against the world it shares: a crash and restart, grants of the
// per-user registry made before it started, a squatter on its socket name,
// socket activation, and `portres add --force`. Private daemons in the
// test's private network namespace (root only; skipped visibly otherwise).
#include "linux/broker_support.hpp"

#include "core/portable_backend.hpp"
#include "linux/broker_mode.hpp"
#include "linux/broker_presence.hpp"
#include "linux/registry.hpp"
#include "linux/state_files.hpp"
#include "platform.hpp"
#include "portres/portres.hpp"

#include <asio/io_context.hpp>

#include <gsl/gsl>

#include <cstring>

#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

using namespace portres;
using namespace portres_test;
using portres::detail::blocking;
using portres::detail::broker_registry;

namespace {

bool kernel_lists(std::uint32_t port) {
  const auto list = portres::detail::linux_files::parse_port_list(read_sysctl(reserved_ports_path));
  return list && list->test(port);
}

} // namespace

TEST_CASE("broker restart: a SIGKILLed daemon's successor leaks no kernel entry, grants no block twice, and old "
          "clients learn their reservation is lost") {
  if (const char* why = broker_skip_reason()) PORTRES_SKIP(why);
  const auto eph = portres::detail::platform::ephemeral_range();
  const port_range inside(static_cast<std::uint16_t>(eph.first() + 300), 10);
  asio::io_context io;
  auto first = std::make_unique<test_daemon>("restart");
  // The old client: the library's backend over the first daemon.
  portres::detail::portable_backend old_client(backend_kind::native, first->client());
  std::error_code ec;
  auto held = old_client.acquire(io.get_executor(), protocol::tcp, inside, blocking::allowed, ec);
  REQUIRE_MESSAGE(!ec, ec);
  auto wildcard = old_client.acquire(io.get_executor(), protocol::tcp, port_range(0, 4), blocking::allowed, ec);
  REQUIRE_MESSAGE(!ec, ec);
  // One socket bound from the block before the crash keeps its port.
  const int early = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const auto early_port = old_client.bind_fresh(early, protocol::tcp, held->granted().token,
                                                asio::ip::make_address("127.0.0.1"), blocking::allowed, ec);
  REQUIRE_MESSAGE(!ec, ec);
  const auto close_early = gsl::finally([early] { ::close(early); });
  REQUIRE(kernel_lists(inside.first()));

  first->kill_hard();
  test_daemon second("restart");
  // The predecessor's kernel entries are gone (its grants ended with it).
  CHECK_MESSAGE(!kernel_lists(inside.first()), read_sysctl(reserved_ports_path));
  CHECK(!kernel_lists(inside.last()));

  // The old client is told, at bind and association, never binds silently.
  const int late = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const auto close_late = gsl::finally([late] { ::close(late); });
  old_client.bind_fresh(late, protocol::tcp, held->granted().token, asio::ip::make_address("127.0.0.1"),
                        blocking::allowed, ec);
  CHECK(ec == linux_error::reservation_lost);
  CHECK(ec == condition::aborted);
  old_client.associate(late, wildcard->granted().token, blocking::allowed, ec);
  CHECK(ec == linux_error::reservation_lost);
  CHECK(std::string(ec.message()).find("portresd") != std::string::npos);
  old_client.release(static_cast<portres::detail::owned_state&>(*held), blocking::allowed, ec);
  CHECK(ec == linux_error::reservation_lost);
  old_client.release(static_cast<portres::detail::owned_state&>(*held), blocking::allowed, ec);
  CHECK(ec == error::already_released);

  // The new daemon never hands out a port an old socket still holds...
  auto broker = second.client();
  port_range granted;
  auto refused = broker->grant(protocol::tcp, inside, reservation_token{0x7a1}, blocking::allowed, granted, ec);
  CHECK(ec == condition::in_use);
  CHECK(!refused);
  // ...and grants the rest at once, in the kernel list again.
  const auto after = static_cast<std::uint16_t>(early_port + 1);
  const port_range rest(after, inside.last() - after + 1);
  auto regranted = broker->grant(protocol::tcp, rest, reservation_token{0x7a2}, blocking::allowed, granted, ec);
  CHECK_MESSAGE(!ec, ec);
  CHECK(kernel_lists(rest.first()));
  second.stop();
  CHECK(!kernel_lists(rest.first())); // a clean stop leaves nothing either
}

TEST_CASE("broker and per-user registry: a grant of root's registry made before the daemon started is never granted "
          "again, and the registry respects the daemon's kernel entries") {
  if (const char* why = broker_skip_reason()) PORTRES_SKIP(why);
  std::string reason;
  auto files = portres::detail::linux_registry_instance(reason);
  REQUIRE_MESSAGE(files, reason);
  auto registry = portres::detail::as_registry(files);
  const auto eph = portres::detail::platform::ephemeral_range();
  const port_range inside(static_cast<std::uint16_t>(eph.first() + 500), 10);
  std::error_code ec;
  port_range by_registry, by_registry_wild, granted;
  auto r1 = registry->grant(protocol::tcp, inside, reservation_token{0xa1}, blocking::allowed, by_registry, ec);
  REQUIRE_MESSAGE(!ec, ec);
  auto r2 = registry->grant(protocol::tcp, port_range(0, 16), reservation_token{0xa2}, blocking::allowed,
                            by_registry_wild, ec);
  REQUIRE_MESSAGE(!ec, ec);

  test_daemon daemon("modes");
  auto broker = daemon.client();
  // Specific blocks over either registry grant: the registry's conflict error.
  auto d1 = broker->grant(protocol::tcp, inside, reservation_token{0xb1}, blocking::allowed, granted, ec);
  CHECK(ec == error::overlaps_reservation);
  CHECK(!d1);
  auto d2 = broker->grant(protocol::tcp, by_registry_wild, reservation_token{0xb2}, blocking::allowed, granted, ec);
  CHECK(ec == error::overlaps_reservation);
  CHECK(!d2);
  // A wildcard goes around them.
  auto d3 = broker->grant(protocol::tcp, port_range(0, 16), reservation_token{0xb3}, blocking::allowed, granted, ec);
  REQUIRE_MESSAGE(!ec, ec);
  CHECK(!granted.overlaps(by_registry_wild));
  CHECK(!granted.overlaps(inside));

  // The other way round: while the daemon serves, the registry grants
  // nothing at all (it cannot see the daemon's blocks outside the kernel list).
  const port_range daemon_block(static_cast<std::uint16_t>(eph.first() + 700), 10);
  auto d4 = broker->grant(protocol::udp, daemon_block, reservation_token{0xb4}, blocking::allowed, granted, ec);
  REQUIRE_MESSAGE(!ec, ec);
  port_range other;
  auto r3 = registry->grant(protocol::udp, daemon_block, reservation_token{0xa3}, blocking::allowed, other, ec);
  CHECK(ec == linux_error::broker_started);
  CHECK(!r3);
  // Once the registry's holder lets go, the daemon grants the block (it
  // looks at the registry folder every 100 ms at most).
  ec.clear();
  registry->release(*r1, blocking::allowed, ec);
  CHECK_MESSAGE(!ec, ec.message());
  std::unique_ptr<portres::detail::registry::lease> d5;
  CHECK(eventually([&] {
    d5 = broker->grant(protocol::tcp, inside, reservation_token{0xb5}, blocking::allowed, granted, ec);
    return !ec;
  }, std::chrono::seconds(2)));
  CHECK_MESSAGE(!ec, ec);
  registry->release(*r2, blocking::allowed, ec);
}

// A process that chose the per-user registry before the daemon
// started (the mode is chosen once per process), or runs with
// PORTRES_BROKER=off, sees the daemon's grants only through the kernel list,
// which holds only blocks that meet the ephemeral range. A daemon grant below
// the ephemeral range is granted again by the registry: two live holders.
TEST_CASE("broker and per-user registry: a daemon grant outside the ephemeral range is not granted again by the "
          "registry") {
  if (const char* why = broker_skip_reason()) PORTRES_SKIP(why);
#if defined(PORTRES_PORTRESD)
  std::string reason;
  auto files = portres::detail::linux_registry_instance(reason);
  REQUIRE_MESSAGE(files, reason);
  auto registry = portres::detail::as_registry(files);
  const auto eph = portres::detail::platform::ephemeral_range();
  REQUIRE(eph.first() > 3000);
  const port_range outside(static_cast<std::uint16_t>(eph.first() - 2000), 10);
  // The daemon on its real name (this test's network namespace is private).
  test_daemon daemon("real", {}, "portresd");
  const auto broker = daemon.client();
  std::error_code ec;
  port_range granted, again;
  auto d1 = broker->grant(protocol::tcp, outside, reservation_token{0xc1}, blocking::allowed, granted, ec);
  REQUIRE_MESSAGE(!ec, ec);
  // The registry of a process that chose it before the daemon started.
  auto r1 = registry->grant(protocol::tcp, outside, reservation_token{0xc2}, blocking::allowed, again, ec);
  CHECK_MESSAGE(ec == linux_error::broker_started, "registry granted " << portres::to_string(again)
                                                                 << " while the daemon holds it (" << ec << ")");
  if (r1) registry->release(*r1, blocking::allowed, ec);
#endif
}

// "One daemon per namespace (the socket name is taken)" holds only
// for one name; --socket takes any, and older daemons kept their lock in a
// folder of their own (--state-dir, PORTRES_DAEMON_DIR). A second daemon
// would grant blocks outside the ephemeral range that the first holds.
TEST_CASE("broker: a second portresd in the same namespace (another socket name, another state folder) does not "
          "start, and no block is granted twice") {
  if (const char* why = broker_skip_reason()) PORTRES_SKIP(why);
#if defined(PORTRES_PORTRESD)
  const auto eph = portres::detail::platform::ephemeral_range();
  REQUIRE(eph.first() > 3000);
  const port_range outside(static_cast<std::uint16_t>(eph.first() - 2100), 10);
  test_daemon first("first");
  auto a = first.client();
  std::error_code ec;
  port_range granted;
  auto d1 = a->grant(protocol::tcp, outside, reservation_token{0xd1}, blocking::allowed, granted, ec);
  REQUIRE_MESSAGE(!ec, ec);
  const auto elsewhere = (scratch_dir() / "elsewhere").string();
  ::mkdir(elsewhere.c_str(), 0700);
  for (const bool other_folder : {false, true}) {
    const std::string name2 = "portres-test-" + std::to_string(::getpid()) + (other_folder ? "-folder" : "-second");
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      if (other_folder) ::setenv("PORTRES_DAEMON_DIR", elsewhere.c_str(), 1);
      ::execl(PORTRES_PORTRESD, "portresd", "--foreground", "--socket", name2.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    bool exited = false;
    for (int i = 0; i < 400 && !exited; ++i) { // bounded: 2 s
      exited = ::waitpid(pid, nullptr, WNOHANG) == pid;
      if (!exited) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (!exited) {
      // Serving: it must not grant the first daemon's block.
      std::string reason;
      auto b = broker_registry::connect(name2, reason);
      port_range again;
      if (b) b->grant(protocol::tcp, outside, reservation_token{0xd2}, blocking::allowed, again, ec);
      CHECK_MESSAGE(ec == error::overlaps_reservation, "second portresd granted " << portres::to_string(again));
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
    CHECK_MESSAGE(exited, "a second portresd serves the namespace" << (other_folder ? " (another folder)" : ""));
  }
#endif
}

TEST_CASE("broker: a squatter on the socket name is named as an impostor, and PORTRES_BROKER=required refuses to "
          "fall back") {
  if (const char* why = broker_skip_reason()) PORTRES_SKIP(why);
  const std::string name = "portres-test-impostor-" + std::to_string(::getpid());
  squatter nobody(name);
  const auto fallback = portres::detail::choose_registry_mode("", name);
  INFO(fallback.description);
  CHECK(fallback.files);
  CHECK(!fallback.broker);
  CHECK(fallback.description.find("held by non-root uid 65534") != std::string::npos);
  CHECK(fallback.description.find("impostor") != std::string::npos);
  CHECK(fallback.description.find("using per-user registry") != std::string::npos);

  const auto required = portres::detail::choose_registry_mode("required", name);
  INFO(required.description);
  CHECK(!required.files);
  CHECK(!required.broker);
  REQUIRE(required.active());
  CHECK(required.description.find("impostor") != std::string::npos);
  std::error_code ec;
  port_range granted;
  auto none = required.active()->grant(protocol::tcp, port_range(0, 1), reservation_token{1}, blocking::allowed,
                                       granted, ec);
  CHECK(!none);
  CHECK(ec == linux_error::broker_required);
  CHECK(ec == condition::not_supported);
}

TEST_CASE("broker: socket activation (LISTEN_FDS) serves on the inherited socket, taken by root before anyone") {
  if (const char* why = broker_skip_reason()) PORTRES_SKIP(why);
#if defined(PORTRES_PORTRESD)
  const std::string name = "portres-test-activated-" + std::to_string(::getpid());
  const int listener = listen_abstract(name, 16);
  REQUIRE(listener >= 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(listener, 3);
    ::fcntl(3, F_SETFD, 0); // inherited across exec, even if it already was descriptor 3
    ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
    ::setenv("LISTEN_FDS", "1", 1);
    ::execl(PORTRES_PORTRESD, "portresd", "--foreground", "--socket", name.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(listener);
  const auto stop = gsl::finally([pid] {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  });
  std::string reason;
  const bool answered = eventually([&] { return broker_registry::connect(name, reason) != nullptr; });
  INFO(reason);
  REQUIRE(answered);
  auto broker = broker_registry::connect(name, reason);
  std::error_code ec;
  port_range granted;
  auto lease = broker->grant(protocol::tcp, port_range(0, 2), reservation_token{0x5a}, blocking::allowed, granted, ec);
  CHECK_MESSAGE(!ec, ec);
  CHECK(granted.count() == 2);
#endif
}

TEST_CASE("broker: portres add --force reaches the daemon (persistent rights still required)") {
  if (const char* why = broker_skip_reason()) PORTRES_SKIP(why);
  const auto eph = portres::detail::platform::ephemeral_range();
  test_daemon daemon("force");
  auto broker = daemon.client();
  const port_range greedy(eph.first(), eph.count() / 2 + 1);
  std::error_code ec;
  broker->persistent_create(protocol::tcp, greedy, ec);
  CHECK(ec == error::ephemeral_starved);
  CHECK(!kernel_lists(greedy.first()));
  // What `portres add --force` does: the required share is 0 in its environment.
  ::setenv("PORTRES_EPHEMERAL_FREE_SHARE", "0", 1);
  const auto restore = gsl::finally([] { ::unsetenv("PORTRES_EPHEMERAL_FREE_SHARE"); });
  const auto token = broker->persistent_create(protocol::tcp, greedy, ec);
  CHECK_MESSAGE(!ec, ec);
  CHECK(token);
  CHECK(kernel_lists(greedy.first()));
  // An unprivileged caller's force flag does not get it through.
  int out[2];
  REQUIRE(::pipe(out) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::string said = "error setuid";
    if (become_nobody()) {
      std::string why;
      auto mine = broker_registry::connect(daemon.name(), why);
      std::error_code child_ec;
      if (mine) mine->persistent_create(protocol::udp, port_range(static_cast<std::uint16_t>(eph.last() - 5), 5), child_ec);
      said = mine ? child_ec.message() : why;
    }
    (void)!::write(out[1], said.data(), said.size());
    ::_exit(0);
  }
  ::close(out[1]);
  char buf[256] = {};
  (void)!::read(out[0], buf, sizeof buf - 1);
  ::close(out[0]);
  ::waitpid(pid, nullptr, 0);
  CHECK(std::string(buf) == make_error_code(error::privilege_required).message());
  broker->persistent_remove(protocol::tcp, greedy, ec);
  CHECK(!ec);
  CHECK(!kernel_lists(greedy.first()));
}

TEST_CASE("broker: a damaged record of a predecessor's kernel entries is reported, and nothing is reclaimed") {
  if (const char* why = broker_skip_reason()) PORTRES_SKIP(why);
#if defined(PORTRES_PORTRESD)
  const std::string dir = portres::detail::broker_presence::folder(); // the test's own (test_main)
  ::mkdir(dir.c_str(), 0755);
  const auto ns = std::to_string(portres::detail::linux_files::network_namespace_id());
  {
    std::FILE* f = std::fopen((dir + "/kernel-owned." + ns).c_str(), "w");
    REQUIRE(f != nullptr);
    std::fputs("50000-50004,garbage\n", f);
    std::fclose(f);
  }
  const std::string before = read_sysctl("/proc/sys/net/ipv4/ip_local_reserved_ports");
  const auto restore = gsl::finally([before] { write_sysctl("/proc/sys/net/ipv4/ip_local_reserved_ports", before); });
  write_sysctl("/proc/sys/net/ipv4/ip_local_reserved_ports", "50000-50004"); // someone's entries
  const std::string log = dir + "-damaged.log";
  const std::string name = "portres-test-" + std::to_string(::getpid()) + "-damaged";
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out >= 0) ::dup2(out, STDERR_FILENO);
    ::execl(PORTRES_PORTRESD, "portresd", "--foreground", "--socket", name.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const auto stop = gsl::finally([pid] {
    ::kill(pid, SIGTERM);
    ::waitpid(pid, nullptr, 0);
  });
  std::string reason;
  std::shared_ptr<broker_registry> client;
  for (int i = 0; i < 400 && !client; ++i) { // bounded: 2 s
    client = broker_registry::connect(name, reason);
    if (!client) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  REQUIRE_MESSAGE(client, reason);
  std::error_code ec;
  const auto text = portres::detail::linux_files::read_file(log, ec).value_or("");
  CHECK_MESSAGE(text.find("unusable") != std::string::npos, "daemon log: " << text);
  CHECK(kernel_lists(50000)); // left in place, as foreign
#endif
}
