// The client side of portresd (broker_client.hpp) and the mode a process
// chooses (broker_mode.hpp) against a hostile holder of the daemon's name:
// nothing a portres process does waits on another user's process. Fresh
// processes as real users (setpriv), in the test's private namespaces.
#include "linux/broker_support.hpp"
#include "linux/probe_support.hpp"

#include "portres/linux_error.hpp"

#include <chrono>
#include <cstdint>

#include <poll.h>

using namespace portres;
using namespace portres_test;

namespace {

// The probe's first word: "ok", "error", "mode", or "timeout" when it hung.
std::string verdict(const std::string& answer) { return answer.substr(0, answer.find(' ')); }

// A nobody process on abstract `name` that accepts every connection, closes
// it at once and counts it; count() asks it how many so far.
class counting_squatter {
public:
  explicit counting_squatter(const std::string& name) {
    int ask[2], tell[2];
    REQUIRE(::pipe(ask) == 0);
    REQUIRE(::pipe(tell) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::close(ask[1]);
      ::close(tell[0]);
      const int s = become_nobody() ? listen_abstract(name, 64) : -1;
      std::uint32_t accepted = s >= 0 ? 0 : ~std::uint32_t{0}; // all ones: could not listen
      (void)!::write(tell[1], &accepted, sizeof accepted);
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
      while (s >= 0 && std::chrono::steady_clock::now() < deadline) { // bounded: the test ends long before
        pollfd p[2] = {{s, POLLIN, 0}, {ask[0], POLLIN, 0}};
        if (::poll(p, 2, 100) <= 0) continue;
        if (p[0].revents & POLLIN) {
          if (const int c = ::accept(s, nullptr, nullptr); c >= 0) {
            ++accepted;
            ::close(c);
          }
        }
        if (p[1].revents != 0) {
          char c = 0;
          if (::read(ask[0], &c, 1) != 1) break; // the test closed its end
          (void)!::write(tell[1], &accepted, sizeof accepted);
        }
      }
      ::_exit(0);
    }
    ::close(ask[0]);
    ::close(tell[1]);
    ask_ = ask[1];
    tell_ = tell[0];
    REQUIRE(read_count() == 0);
  }
  ~counting_squatter() {
    ::close(ask_);
    ::close(tell_);
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  counting_squatter(const counting_squatter&) = delete;
  counting_squatter& operator=(const counting_squatter&) = delete;

  /// Connections accepted so far (after those already queued are taken).
  std::uint32_t count() {
    ::usleep(200'000); // a connection still in the backlog is accepted within one poll
    REQUIRE(::write(ask_, "?", 1) == 1);
    return read_count();
  }

private:
  std::uint32_t read_count() {
    std::uint32_t n = ~std::uint32_t{0};
    pollfd p{tell_, POLLIN, 0};
    if (::poll(&p, 1, 5000) == 1) (void)!::read(tell_, &n, sizeof n);
    return n;
  }
  pid_t pid_ = -1;
  int ask_ = -1, tell_ = -1;
};

} // namespace

TEST_CASE("per-user registry: its grants never connect to the daemon's name, whoever holds it") {
  if (const char* why = probe_skip_reason()) PORTRES_SKIP(why);
  counting_squatter nobody("portresd");
  const auto limit = std::chrono::seconds(8);
  constexpr int grants = 20;
  // Default mode: one look at the name when the mode is chosen (an impostor
  // holds it: the per-user registry), none per grant or release.
  probe root(0);
  const auto mode = root.ask("mode", limit);
  CHECK_MESSAGE(mode.find("per-user registry") != std::string::npos, mode);
  const auto at_choice = nobody.count();
  CHECK(at_choice <= 1);
  for (int i = 0; i < grants; ++i) {
    REQUIRE_MESSAGE(root.ask("acquire tcp 0 4", limit).rfind("ok ", 0) == 0, "root, default mode, grant " << i);
    REQUIRE(root.ask("release " + std::to_string(i), limit) == "ok");
  }
  CHECK(nobody.count() == at_choice);
  // PORTRES_BROKER=off: not even a look.
  probe off(0, {"PORTRES_BROKER=off"});
  for (int i = 0; i < grants; ++i) {
    REQUIRE_MESSAGE(off.ask("acquire tcp 0 4", limit).rfind("ok ", 0) == 0, "root, PORTRES_BROKER=off, grant " << i);
  }
  CHECK(nobody.count() == at_choice);
}

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
