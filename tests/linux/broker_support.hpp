// Test helpers for portresd: a private daemon started as a child process
// (killed at the end), a squatter on a socket name, and small utilities.
#ifndef PORTRES_TESTS_LINUX_BROKER_SUPPORT_HPP
#define PORTRES_TESTS_LINUX_BROKER_SUPPORT_HPP

#include "linux/broker_client.hpp"
#include "linux/broker_protocol.hpp"
#include "linux/nobody_process.hpp"
#include "support.hpp"

#include <chrono>
#include <csignal>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <fcntl.h>
#include <grp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace portres_test {

inline constexpr const char* reserved_ports_path = "/proc/sys/net/ipv4/ip_local_reserved_ports";
inline constexpr const char* port_range_path = "/proc/sys/net/ipv4/ip_local_port_range";

/// Why broker tests cannot run here, or null.
inline const char* broker_skip_reason() {
#if !defined(PORTRES_PORTRESD)
  return "portresd is not built";
#else
  if (::geteuid() != 0) return "portresd tests need root (the daemon runs as root)";
  if (!in_private_netns()) return "no private network namespace (would touch the host's kernel settings)";
  return nullptr;
#endif
}

/// Binds and listens on abstract SEQPACKET `name`: the descriptor, or -1.
inline int listen_abstract(const std::string& name, int backlog) {
  const auto address = portres::detail::broker_wire::abstract_address(name);
  const int s = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (!address || s < 0 || ::bind(s, reinterpret_cast<const sockaddr*>(&address->addr), address->length) != 0 ||
      ::listen(s, backlog) != 0) {
    if (s >= 0) ::close(s);
    return -1;
  }
  return s;
}

/// A nobody process holding abstract name `name` until destroyed. With
/// `never_accepts`, it listens with backlog 0 and fills that backlog
/// itself: every further connect finds it full, and nothing is accepted.
class squatter {
public:
  explicit squatter(const std::string& name, bool never_accepts = false)
      : holder_([&] {
          const int s = listen_abstract(name, never_accepts ? 0 : 16);
          const auto address = portres::detail::broker_wire::abstract_address(name);
          for (int i = 0; never_accepts && s >= 0 && i < 16; ++i) { // bounded: the backlog holds one or two
            const int c = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0);
            if (::connect(c, reinterpret_cast<const sockaddr*>(&address->addr), address->length) != 0) break;
          }
          return s >= 0;
        }) {
    REQUIRE(holder_.ready());
  }

private:
  nobody_process holder_;
};

/// portresd as a child process, on a private socket name (or `name` when
/// given); SIGTERM then SIGKILL at destruction. `max_files`: its descriptor
/// limit (0: inherited); `log_file`: where its stderr goes; `prepare`: runs
/// in the child before the exec.
class test_daemon {
public:
  explicit test_daemon(const std::string& tag = "d", const std::string& policy_file = {}, const std::string& name = {},
                       rlim_t max_files = 0, const std::string& log_file = {},
                       const std::function<bool()>& prepare = {}) {
    name_ = name.empty() ? "portres-test-" + std::to_string(::getpid()) + "-" + tag : name;
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      if (prepare && !prepare()) ::_exit(126);
      if (max_files != 0) {
        const rlimit limit{max_files, max_files};
        ::setrlimit(RLIMIT_NOFILE, &limit);
      }
      if (!log_file.empty()) {
        const int out = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (out >= 0) ::dup2(out, STDERR_FILENO);
      }
#if defined(PORTRES_PORTRESD)
      if (policy_file.empty()) {
        ::execl(PORTRES_PORTRESD, "portresd", "--foreground", "--socket", name_.c_str(), static_cast<char*>(nullptr));
      } else {
        ::execl(PORTRES_PORTRESD, "portresd", "--foreground", "--socket", name_.c_str(), "--policy",
                policy_file.c_str(), static_cast<char*>(nullptr));
      }
#endif
      ::_exit(127);
    }
    // Ready when it answers (bounded).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    std::string reason;
    while (std::chrono::steady_clock::now() < deadline) {
      if (portres::detail::broker_registry::connect(name_, reason)) return;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        FAIL("portresd exited early: status " << status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    stop(); // no destructor runs for an object whose constructor throws
    FAIL("portresd did not answer within 10 s: " << reason);
  }
  ~test_daemon() { stop(); }
  test_daemon(const test_daemon&) = delete;
  test_daemon& operator=(const test_daemon&) = delete;

  const std::string& name() const { return name_; }
  pid_t pid() const { return pid_; }
  bool alive() const { return pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == 0; }

  std::shared_ptr<portres::detail::broker_registry> client() const {
    std::string reason;
    auto c = portres::detail::broker_registry::connect(name_, reason);
    INFO(reason);
    REQUIRE(c);
    return c;
  }

  /// SIGKILL: the daemon gets no chance to clean up (a crash).
  void kill_hard() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 200 && ::waitpid(pid_, nullptr, WNOHANG) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

private:
  std::string name_;
  pid_t pid_ = -1;
};

/// Polls `done` every 5 ms for up to `limit`.
template <class Predicate>
bool eventually(Predicate done, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

} // namespace portres_test

#endif
