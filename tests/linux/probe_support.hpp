// Running portres_probe (tests/linux/probe.cpp) as a real user: a fresh
// process started through `setpriv --reuid/--regid --clear-groups` (or as
// root), its environment adjusted, asked one line at a time with a deadline
// (an answer that does not come in time is "timeout": a hang is a failure,
// never a stuck test). Killed at destruction.
#ifndef PORTRES_TESTS_LINUX_PROBE_SUPPORT_HPP
#define PORTRES_TESTS_LINUX_PROBE_SUPPORT_HPP

#include "support.hpp"

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace portres_test {

/// Why probes cannot run here, or null.
inline const char* probe_skip_reason() {
#if !defined(PORTRES_PROBE)
  return "portres_probe is not built";
#else
  if (::geteuid() != 0) return "probes as other users need root (setpriv)";
  if (!in_private_netns()) return "no private network namespace (would touch the host's kernel settings)";
  if (::access("/usr/bin/setpriv", X_OK) != 0) return "setpriv (util-linux) is not installed";
  return nullptr;
#endif
}

/// A folder `uid` owns (mode 0700) under the test's scratch folder: its
/// per-user registry.
inline std::string folder_of(unsigned uid, const std::string& name) {
  const auto dir = (scratch_dir() / name).string();
  ::mkdir(dir.c_str(), 0700);
  ::chown(dir.c_str(), uid, uid);
  return dir;
}

/// Runs `body` in a forked child: its exit status, or -1 when it did not
/// end within `limit` (then it is killed).
template <class Body>
int in_child_within(std::chrono::milliseconds limit, Body body) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) ::_exit(body());
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return -1;
    }
    ::usleep(5000);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class probe {
public:
  /// `env`: "NAME=value" sets, "-NAME" unsets (after the test's own
  /// environment); `setpriv`: more setpriv options (capabilities, groups:
  /// "--clear-groups" is the default); `prepare`: runs in the child before
  /// the exec (false: the probe exits at once).
  explicit probe(unsigned uid, std::vector<std::string> env = {}, std::vector<std::string> setpriv = {},
                 const std::function<bool()>& prepare = {}) {
    int in[2], out[2];
    REQUIRE(::pipe2(in, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::dup2(in[0], STDIN_FILENO);
      ::dup2(out[1], STDOUT_FILENO);
      if (prepare && !prepare()) ::_exit(126);
      for (const auto& e : env) {
        if (!e.empty() && e[0] == '-') {
          ::unsetenv(e.c_str() + 1);
        } else if (const auto eq = e.find('='); eq != std::string::npos) {
          ::setenv(e.substr(0, eq).c_str(), e.substr(eq + 1).c_str(), 1);
        }
      }
#if defined(PORTRES_PROBE)
      if (uid == 0) {
        ::execl(PORTRES_PROBE, "portres_probe", static_cast<char*>(nullptr));
      } else {
        const auto id = std::to_string(uid);
        std::vector<std::string> args{"setpriv", "--reuid=" + id, "--regid=" + id};
        if (setpriv.empty()) setpriv = {"--clear-groups", "--inh-caps=-all"};
        args.insert(args.end(), setpriv.begin(), setpriv.end());
        args.emplace_back(PORTRES_PROBE);
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv("/usr/bin/setpriv", argv.data());
      }
#endif
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    to_ = in[1];
    from_ = out[0];
  }
  ~probe() { stop(); }
  probe(const probe&) = delete;
  probe& operator=(const probe&) = delete;

  /// Sends `line`, returns the answer, or "timeout" after `limit`.
  std::string ask(const std::string& line, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    const auto text = line + "\n";
    if (::write(to_, text.data(), text.size()) != static_cast<ssize_t>(text.size())) return "dead";
    return answer(limit);
  }

  /// The next answer line, or "timeout".
  std::string answer(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (true) {
      if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
        auto out = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return out;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return "timeout";
      pollfd p{from_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[512];
      const auto n = ::read(from_, chunk, sizeof chunk);
      if (n <= 0) return "dead";
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  pid_t pid() const { return pid_; }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    ::close(to_);
    ::close(from_);
    pid_ = -1;
  }

private:
  pid_t pid_ = -1;
  int to_ = -1, from_ = -1;
  std::string buffer_;
};

} // namespace portres_test

#endif
