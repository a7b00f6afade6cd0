// portresd's loop (lib/programs/portresd/server.cpp): one user's burst of
// grants, or the death of a process holding thousands, costs other users a
// bounded wait, because the kernel list is written once per turn of the loop
// for every grant and release of that turn (kernel_view.hpp). A real user
// with raised caps against a private daemon, in the test's private namespaces.
#include "linux/broker_support.hpp"
#include "linux/probe_support.hpp"

#include "platform.hpp"

#include <gsl/gsl>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <vector>

#include <sys/resource.h>

using namespace portres;
using namespace portres_test;
using portres::detail::blocking;
namespace wire = portres::detail::broker_wire;

namespace {

// How long one root grant takes now.
std::chrono::milliseconds time_root_grant(const test_daemon& daemon, std::uint64_t token) {
  auto broker = daemon.client();
  const auto start = std::chrono::steady_clock::now();
  std::error_code ec;
  port_range granted;
  auto lease = broker->grant(protocol::tcp, port_range(0, 1), reservation_token{token}, blocking::allowed, granted, ec);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  CHECK_MESSAGE(!ec, ec);
  return took;
}

} // namespace

TEST_CASE("portresd fairness: one user's 4,000 pipelined acquires, and its death holding them, stall root for "
          "well under a second") {
  if (const char* why = broker_skip_reason()) PORTRES_SKIP(why);
  const auto policy = scratch_dir() / "portresd.policy";
  std::ofstream(policy) << "max-blocks 65534 5000\nmax-ports 65534 5000\nmax-connections 65534 5000\n";
  test_daemon daemon("fair", policy.string());
  const int burst = race_scaled(4000); // 4,000 acquires (fewer under the sanitizers)
  const auto eph = portres::detail::platform::ephemeral_range();
  REQUIRE(eph.count() >= 2 * burst + 200);

  // nobody sends 4,000 acquires of one-port blocks inside the ephemeral
  // range (4,000 kernel list entries), each on its own connection, without
  // waiting for any answer; then holds them.
  int sent_pipe[2];
  REQUIRE(::pipe(sent_pipe) == 0);
  const pid_t hog = ::fork();
  REQUIRE(hog >= 0);
  if (hog == 0) {
    ::close(sent_pipe[0]);
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
    if (!become_nobody()) ::_exit(2);
    for (int i = 0; i < burst; ++i) {
      std::error_code ec;
      const int fd = portres::detail::broker_link::connect(daemon.name(), ec);
      if (fd < 0) continue;
      wire::request r;
      r.kind = wire::op::acquire;
      r.first = static_cast<std::uint16_t>(eph.first() + 100 + 2 * i);
      r.count = 1;
      r.token = 0x100000 + static_cast<std::uint64_t>(i);
      const auto bytes = wire::encode(r);
      (void)!::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    }
    (void)!::write(sent_pipe[1], "s", 1);
    ::pause();
    ::_exit(0);
  }
  ::close(sent_pipe[1]);
  const auto kill_hog = gsl::finally([hog] {
    ::kill(hog, SIGKILL);
    ::waitpid(hog, nullptr, 0);
  });
  // Root asks while the burst is being served.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto worst = time_root_grant(daemon, 0xf001);
  char c;
  (void)!::read(sent_pipe[0], &c, 1);
  ::close(sent_pipe[0]);
  worst = std::max(worst, time_root_grant(daemon, 0xf002));
  MESSAGE("root waited at most " << worst.count() << " ms behind the burst");
  CHECK(worst < std::chrono::milliseconds(1000));
  // Every grant of the burst is served (and listed) before the kill.
  std::error_code ec;
  CHECK(eventually([&] { return daemon.client()->list(ec).size() >= static_cast<std::size_t>(burst); },
                   std::chrono::seconds(30)));

  // Its holder dies: 4,000 hang-ups at once.
  ::kill(hog, SIGKILL);
  const auto after_kill = time_root_grant(daemon, 0xf003);
  MESSAGE("root waited " << after_kill.count() << " ms after the kill");
  CHECK(after_kill < std::chrono::milliseconds(1000));
  CHECK(eventually([&] { return daemon.client()->list(ec).size() <= 1; }, std::chrono::seconds(10)));
}
