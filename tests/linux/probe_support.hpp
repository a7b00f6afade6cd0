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

class probe {
public:
  /// `env`: "NAME=value" sets, "-NAME" unsets (after the test's own environment).
  explicit probe(unsigned uid, std::vector<std::string> env = {}) {
    int in[2], out[2];
    REQUIRE(::pipe2(in, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::dup2(in[0], STDIN_FILENO);
      ::dup2(out[1], STDOUT_FILENO);
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
        ::execl("/usr/bin/setpriv", "setpriv", ("--reuid=" + id).c_str(), ("--regid=" + id).c_str(),
                "--clear-groups", "--inh-caps=-all", PORTRES_PROBE, static_cast<char*>(nullptr));
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
