// portresd's connection table (lib/programs/portresd/connections.hpp): other
// users flooding it never lock root out, a process refused during a flood is
// not left in another mode for life, and a connection holding nothing is
// closed on time whatever it says. Real users, a private daemon with a small
// descriptor limit, in the test's private namespaces.
#include "linux/broker_support.hpp"
#include "linux/probe_support.hpp"

#include "portres/linux_error.hpp"

#include <fstream>
#include <vector>

using namespace portres;
using namespace portres_test;
namespace wire = portres::detail::broker_wire;

namespace {

std::string verdict(const std::string& answer) { return answer.substr(0, answer.find(' ')); }

// A nobody process holding as many connections to `name` as the daemon
// lets it keep (at most `tries`), silent, until killed.
struct flood {
  pid_t pid = -1;
  int held = 0;
  flood(const std::string& name, int tries) {
    int report[2];
    REQUIRE(::pipe(report) == 0);
    pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(report[0]);
      int kept = -1;
      if (become_nobody()) {
        std::vector<int> fds;
        for (int i = 0; i < tries; ++i) {
          std::error_code ec;
          const int fd = portres::detail::broker_link::connect(name, ec);
          if (fd >= 0) fds.push_back(fd);
        }
        ::usleep(300000); // the daemon has answered the ones it refused
        kept = 0;
        for (const int fd : fds) {
          char c;
          kept += ::recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK) < 0 && errno == EAGAIN ? 1 : 0;
        }
      }
      (void)!::write(report[1], &kept, sizeof kept);
      ::pause();
      ::_exit(0);
    }
    ::close(report[1]);
    (void)!::read(report[0], &held, sizeof held);
    ::close(report[0]);
  }
  ~flood() { stop(); }
  void stop() {
    if (pid <= 0) return;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    pid = -1;
  }
};

} // namespace

TEST_CASE("portresd connections: other users' flood never locks root out, and a process refused meanwhile uses "
          "the daemon once it is over") {
  if (const char* why = broker_skip_reason()) PORTRES_SKIP(why);
  if (const char* why = probe_skip_reason()) PORTRES_SKIP(why);
  const auto policy = scratch_dir() / "portresd.policy";
  std::ofstream(policy) << "max-connections * 1000\nidle-seconds 60\n";
  // On the default name, so that fresh processes choose their mode against
  // it; 200 descriptors: a table of about 136 connections.
  test_daemon daemon("flood", policy.string(), "portresd", 200);
  flood others(daemon.name(), 400);
  INFO("nobody holds " << others.held << " connections");
  CHECK(others.held > 50);

  // Root, in a fresh process: served.
  probe root(0);
  const auto granted = root.ask("acquire tcp 0 4");
  CHECK_MESSAGE(verdict(granted) == "ok", granted);

  // A user whose process starts during the flood: the daemon is there, so
  // broker mode; refused for now, with the limit named.
  probe late(65534, {"PORTRES_RUNTIME_DIR=" + folder_of(65534, "nobody-run")});
  const auto mode = late.ask("mode");
  CHECK_MESSAGE(mode.rfind("mode 1 ", 0) == 0, mode);
  const auto refused = late.ask("acquire tcp 0 4");
  INFO(refused);
  CHECK(refused.rfind("error portres.linux " + std::to_string(static_cast<int>(linux_error::connection_quota)), 0) == 0);
  // Once the flood is over, the same process is served.
  others.stop();
  CHECK(eventually([&] { return verdict(late.ask("acquire tcp 0 4")) == "ok"; }));
}

TEST_CASE("portresd connections: a connection that holds nothing is closed on time, whatever it says") {
  if (const char* why = broker_skip_reason()) PORTRES_SKIP(why);
  const auto policy = scratch_dir() / "portresd.policy";
  std::ofstream(policy) << "idle-seconds 1\n";
  test_daemon daemon("idle", policy.string());
  const auto status = in_child_within(std::chrono::seconds(15), [&] {
    if (!become_nobody()) return 2;
    std::error_code ec;
    const int fd = portres::detail::broker_link::connect(daemon.name(), ec);
    if (fd < 0) return 3;
    // A hello every 300 ms for up to 12 s (past any idle limit measured
    // from the last message): the daemon hangs up all the same.
    for (int i = 0; i < 40; ++i) {
      wire::request hello;
      hello.kind = wire::op::hello;
      portres::detail::broker_link::exchange(fd, hello, ec);
      if (ec) return 0;
      ::usleep(300000);
    }
    return 1;
  });
  CHECK_MESSAGE(status == 0, "the connection stayed open (" << status << ")");
}
