// A child process running as another user (nobody), holding what it opened
// until the test is done with it: the other user of the multi-user tests.
#ifndef PORTRES_TESTS_LINUX_NOBODY_PROCESS_HPP
#define PORTRES_TESTS_LINUX_NOBODY_PROCESS_HPP

#include <doctest/doctest.h>

#include <csignal>
#include <cstdint>
#include <functional>

#include <grp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace portres_test {

/// Drops this process to nobody (uid and gid 65534, no supplementary groups).
inline bool become_nobody() { return ::setgroups(0, nullptr) == 0 && ::setgid(65534) == 0 && ::setuid(65534) == 0; }

/// Forks a child that becomes nobody, runs `setup` there and, whatever it
/// answered, stays alive (keeping every descriptor `setup` opened) until
/// destroyed: SIGKILL, then reaped. ready() is setup's answer (false too when
/// the child could not become nobody, or setup threw).
class nobody_process {
public:
  explicit nobody_process(const std::function<bool()>& setup) {
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::close(ready[0]);
      char ok = 'n';
      try { // a setup that throws must not unwind into the test that forked this child
        ok = become_nobody() && setup() ? 'y' : 'n';
      } catch (...) {
      }
      (void)!::write(ready[1], &ok, 1);
      ::pause(); // bounded by the parent's SIGKILL
      ::_exit(0);
    }
    ::close(ready[1]);
    char ok = 'n';
    ready_ = ::read(ready[0], &ok, 1) == 1 && ok == 'y';
    ::close(ready[0]);
  }
  ~nobody_process() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  nobody_process(const nobody_process&) = delete;
  nobody_process& operator=(const nobody_process&) = delete;

  bool ready() const noexcept { return ready_; }

private:
  pid_t pid_ = -1;
  bool ready_ = false;
};

/// Another user (nobody) holding `port` on 127.0.0.1 with SO_REUSEADDR
/// (bound, not listening) until destroyed: the kernel would let a root
/// SO_REUSEADDR socket share that port.
inline nobody_process nobody_holding(std::uint16_t port) {
  return nobody_process([port] {
    const int s = ::socket(AF_INET, SOCK_STREAM, 0);
    const int on = 1;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return s >= 0 && ::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == 0 &&
           ::bind(s, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
  });
}

} // namespace portres_test

#endif
