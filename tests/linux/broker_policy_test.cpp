// portresd's policy (lib/programs/portresd/policy.hpp) and who a client is
// (credentials.hpp): the defaults keep one user from taking everything, the
// refusals say which limit, privileged ports and persistent rights come from
// the caller's own credentials. Real users (setpriv) against a private
// daemon, in the test's private namespaces.
#include "linux/broker_support.hpp"
#include "linux/probe_support.hpp"

#include "linux/reserved_ports.hpp"
#include "linux/state_files.hpp"
#include "platform.hpp"
#include "portres/linux_error.hpp"
#include "portres/portres.hpp"

#include <gsl/gsl>

#include <fstream>

#include <sys/mount.h>

using namespace portres;
using namespace portres_test;
using portres::detail::blocking;
using portres::detail::broker_registry;

namespace {

std::string verdict(const std::string& answer) { return answer.substr(0, answer.find(' ')); }

// "error portres.linux N ...": the Linux error a probe reported.
bool says(const std::string& answer, linux_error e) {
  return answer.rfind("error portres.linux " + std::to_string(static_cast<int>(e)) + " ", 0) == 0;
}
bool says(const std::string& answer, error e) {
  return answer.rfind("error portres " + std::to_string(static_cast<int>(e)) + " ", 0) == 0;
}

// A probe of `uid` that talks to `daemon` (its own registry folder).
probe client_of(const test_daemon& daemon, unsigned uid, std::vector<std::string> setpriv = {}) {
  std::vector<std::string> env{"PORTRES_BROKER=" + daemon.name()};
  if (uid != 0) env.push_back("PORTRES_RUNTIME_DIR=" + folder_of(uid, "run-" + std::to_string(uid)));
  return probe(uid, env, std::move(setpriv));
}

} // namespace

TEST_CASE("portresd default policy: one user cannot take the placement range, root keeps its share, a cap says which") {
  if (const char* why = broker_skip_reason()) PORTRES_SKIP(why);
  if (const char* why = probe_skip_reason()) PORTRES_SKIP(why);
  test_daemon daemon("defaults");
  auto nobody = client_of(daemon, 65534);
  // The whole IANA range for one user: over its port cap, said in words.
  const auto greedy = nobody.ask("acquire tcp 0 16384");
  CHECK_MESSAGE(says(greedy, linux_error::port_quota), greedy);
  CHECK_MESSAGE(greedy.find("max-ports") != std::string::npos, greedy);
  CHECK(greedy.find("quota exceeded") == std::string::npos);
  // Root's share of the placement range is out of other users' reach.
  const auto in_roots_share = nobody.ask("acquire tcp 65000 10");
  CHECK_MESSAGE(says(in_roots_share, linux_error::reserved_for_root), in_roots_share);
  // Its cap, and another user's, fit.
  CHECK(verdict(nobody.ask("acquire tcp 0 4096")) == "ok");
  auto other = client_of(daemon, 64001);
  CHECK(verdict(other.ask("acquire tcp 0 4096")) == "ok");
  // Root still gets wildcard blocks of 4,096 and 256.
  auto root = client_of(daemon, 0);
  CHECK(verdict(root.ask("acquire tcp 0 4096")) == "ok");
  CHECK(verdict(root.ask("acquire tcp 0 256")) == "ok");
  // The ephemeral range stays at least half free for everyone.
  const auto eph = portres::detail::platform::ephemeral_range();
  const auto taken = portres::detail::linux_files::parse_port_list(read_sysctl(reserved_ports_path)).value_or(portres::detail::port_bitmap{});
  std::uint32_t remaining = 0;
  CHECK_FALSE(portres::detail::reserved_ports::check_free_share(taken, eph, 0.5, remaining));
}

TEST_CASE("portresd default policy: privileged ports only for root or CAP_NET_BIND_SERVICE") {
  if (const char* why = broker_skip_reason()) PORTRES_SKIP(why);
  if (const char* why = probe_skip_reason()) PORTRES_SKIP(why);
  test_daemon daemon("privileged");
  auto nobody = client_of(daemon, 65534);
  const auto ssh = nobody.ask("acquire tcp 22 1");
  CHECK_MESSAGE(says(ssh, error::privilege_required), ssh);
  auto capable = client_of(daemon, 65534,
                           {"--clear-groups", "--inh-caps=+net_bind_service", "--ambient-caps=+net_bind_service"});
  const auto with_cap = capable.ask("acquire tcp 22 1");
  CHECK_MESSAGE(verdict(with_cap) == "ok", with_cap);
  capable.stop(); // frees it for root
  auto root = client_of(daemon, 0);
  CHECK(eventually([&] { return verdict(root.ask("acquire tcp 22 1")) == "ok"; }));
}

TEST_CASE("portresd default policy: max-blocks bounds the kernel list entries one user adds") {
  if (const char* why = broker_skip_reason()) PORTRES_SKIP(why);
  if (const char* why = probe_skip_reason()) PORTRES_SKIP(why);
  test_daemon daemon("blocks");
  const auto eph = portres::detail::platform::ephemeral_range();
  auto nobody = client_of(daemon, 65534);
  // One-port blocks two ports apart inside the ephemeral range: each its own
  // kernel list entry.
  for (unsigned i = 0; i < 64; ++i) {
    const auto answer = nobody.ask("acquire tcp " + std::to_string(eph.first() + 100 + 2 * i) + " 1");
    REQUIRE_MESSAGE(verdict(answer) == "ok", "block " << i << ": " << answer);
  }
  const auto one_more = nobody.ask("acquire tcp " + std::to_string(eph.first() + 100 + 2 * 64) + " 1");
  CHECK_MESSAGE(says(one_more, linux_error::block_quota), one_more);
  CHECK(one_more.find("max-blocks") != std::string::npos);
}

TEST_CASE("portresd: persistent-group membership is the caller's own groups, not the group database's") {
  if (const char* why = broker_skip_reason()) PORTRES_SKIP(why);
  // A user database (this test's mount namespace only) in which uid 64100 is
  // a member of group 64500, the policy's persistent group.
  const auto etc = scratch_dir() / "etc";
  std::filesystem::create_directories(etc);
  std::ofstream(etc / "passwd") << "root:x:0:0::/root:/bin/sh\nporttest:x:64100:64100::/nonexistent:/bin/false\n";
  std::ofstream(etc / "group") << "root:x:0:\nporttest:x:64100:\nportadmins:x:64500:porttest\n";
  REQUIRE(::mount((etc / "passwd").c_str(), "/etc/passwd", nullptr, MS_BIND, nullptr) == 0);
  const auto unmount_passwd = gsl::finally([] { ::umount("/etc/passwd"); });
  REQUIRE(::mount((etc / "group").c_str(), "/etc/group", nullptr, MS_BIND, nullptr) == 0);
  const auto unmount_group = gsl::finally([] { ::umount("/etc/group"); });
  const auto policy = scratch_dir() / "portresd.policy";
  std::ofstream(policy) << "persistent-group 64500\n";
  test_daemon daemon("group", policy.string());

  // The member's process, without and with the group in its credentials.
  const auto create_as = [&](std::vector<gid_t> groups, std::uint16_t first) {
    return in_child_within(std::chrono::seconds(10), [&] {
      if (::setgroups(groups.size(), groups.data()) != 0 || ::setgid(64100) != 0 || ::setuid(64100) != 0) return 2;
      std::string reason;
      auto broker = broker_registry::connect(daemon.name(), reason);
      if (!broker) return 3;
      std::error_code ec;
      broker->persistent_create(protocol::tcp, port_range(first, 2), ec);
      if (!ec) return 0;
      return ec == error::privilege_required ? 1 : 4;
    });
  };
  CHECK_MESSAGE(create_as({}, 21000) == 1, "a process without the group created a persistent block");
  CHECK_MESSAGE(create_as({64500}, 21010) == 0, "a process with the group was refused");
}

TEST_CASE("portresd logs at most one line per user and reason every 10 s, however often it refuses") {
  if (const char* why = broker_skip_reason()) PORTRES_SKIP(why);
  if (const char* why = probe_skip_reason()) PORTRES_SKIP(why);
  const auto saved_range = read_sysctl(port_range_path);
  write_sysctl(port_range_path, "40000 40999");
  const auto restore = gsl::finally([&] { write_sysctl(port_range_path, saved_range); });
  const auto policy = scratch_dir() / "portresd.policy";
  std::ofstream(policy) << "max-ports 65534 5000\n";
  const auto log = (scratch_dir() / "refusals.log").string();
  test_daemon daemon("log", policy.string(), {}, 0, log);
  auto nobody = client_of(daemon, 65534);
  // 600 of the 1,000 ephemeral ports: would leave under half free.
  for (int i = 0; i < 200; ++i) {
    const auto answer = nobody.ask("acquire tcp 40000 600");
    REQUIRE_MESSAGE(says(answer, error::ephemeral_starved), answer);
  }
  std::ifstream in(log);
  std::string line;
  int refusals = 0;
  while (std::getline(in, line)) refusals += line.find("refused") != std::string::npos ? 1 : 0;
  CHECK_MESSAGE(refusals >= 1, "the refusal is logged at all");
  CHECK_MESSAGE(refusals <= 2, refusals << " log lines for 200 refusals");
}
