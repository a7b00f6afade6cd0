// The client side of portresd (broker_client.hpp) and the mode a process
// chooses (broker_mode.hpp) against a hostile holder of the daemon's name:
// nothing a portres process does waits on another user's process. Fresh
// processes as real users (setpriv), in the test's private namespaces.
#include "linux/broker_support.hpp"
#include "linux/probe_support.hpp"

#include "portres/linux_error.hpp"

#include <chrono>

using namespace portres;
using namespace portres_test;

namespace {

// The probe's first word: "ok", "error", "mode", or "timeout" when it hung.
std::string verdict(const std::string& answer) { return answer.substr(0, answer.find(' ')); }

} // namespace

TEST_CASE("broker client: a squatter on @portresd that never accepts delays no portres call of any user") {
  if (const char* why = probe_skip_reason()) PORTRES_SKIP(why);
  // Anyone may bind the name where no daemon holds it (no socket activation,
  // or a restart gap): nobody does, and lets its backlog fill.
  squatter nobody("portresd", true);

  // The library's own connect: refused within its bound (1 s of retries),
  // naming why. In a child, so a connect that blocks fails the test.
  const auto status = in_child_within(std::chrono::seconds(5), [] {
    std::error_code ec;
    const int fd = portres::detail::broker_link::connect("portresd", ec);
    return fd < 0 && ec == linux_error::broker_busy ? 0 : 1;
  });
  CHECK_MESSAGE(status == 0, (status < 0 ? "connect blocked" : "connect did not answer broker_busy"));

  const auto limit = std::chrono::seconds(8); // each answer: far more than the 1 s retry bound
  // Root, default mode: no daemon serves the namespace, so the per-user
  // registry, chosen at once and saying why.
  probe root(0);
  const auto mode = root.ask("mode", limit);
  CHECK_MESSAGE(verdict(mode) == "mode", mode);
  CHECK_MESSAGE(mode.find("backlog is full") != std::string::npos, mode);
  CHECK_MESSAGE(verdict(root.ask("acquire tcp 0 4", limit)) == "ok", "root, default mode");
  // Root with PORTRES_BROKER=off, and nobody in its own registry: the
  // registry never touches the daemon's name.
  probe off(0, {"PORTRES_BROKER=off"});
  CHECK_MESSAGE(verdict(off.ask("acquire tcp 0 4", limit)) == "ok", "root, PORTRES_BROKER=off");
  probe user(65534, {"PORTRES_RUNTIME_DIR=" + folder_of(65534, "nobody-run")});
  CHECK_MESSAGE(verdict(user.ask("acquire tcp 0 4", limit)) == "ok", "nobody, default mode");
  // Insisting on the broker: a clear refusal, promptly.
  probe required(0, {"PORTRES_BROKER=required"});
  const auto refused = required.ask("acquire tcp 0 4", limit);
  CHECK_MESSAGE(refused.find("portres.linux " + std::to_string(static_cast<int>(linux_error::broker_required))) !=
                    std::string::npos,
                refused);
}
