#include "bench_support.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>

#include "portres/portres.hpp"

#include "common/net.hpp"

#include <asio/io_context.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

namespace portres_bench {
namespace {

bool enter_private_namespace() {
  if (::geteuid() != 0 || ::unshare(CLONE_NEWNET) != 0) return false;
  const int s = ::socket(AF_INET, SOCK_DGRAM, 0);
  ifreq ifr{};
  std::snprintf(ifr.ifr_name, IFNAMSIZ, "lo");
  bool up = ::ioctl(s, SIOCGIFFLAGS, &ifr) == 0;
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  up = up && ::ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
  ::close(s);
  return up;
}

void raise_fd_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
}

// Child body: bind `ports`, report readiness, wait to be killed (or for the
// parent's death: nothing outlives a killed benchmark).
[[noreturn]] void hold_ports(const std::vector<std::uint16_t>& ports, int ready_fd) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  std::uint32_t bound = 0;
  for (const auto port : ports) {
    const int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (s >= 0 && ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) ++bound;
  }
  (void)!::write(ready_fd, &bound, sizeof bound);
  while (true) ::pause();
}

// What this process created and must undo at exit: its scratch folder and
// the portresd it started. Forked children (which never return from main)
// leave both alone.
struct process_leftovers {
  pid_t owner = ::getpid();
  std::filesystem::path scratch;
  pid_t broker = -1;
  ~process_leftovers() {
    if (::getpid() != owner) return;
    if (broker > 0) {
      ::kill(broker, SIGTERM);
      for (int i = 0; i < 200 && ::waitpid(broker, nullptr, WNOHANG) == 0; ++i) ::usleep(10000);
      ::kill(broker, SIGKILL);
      ::waitpid(broker, nullptr, 0);
    }
    std::error_code ignored;
    if (!scratch.empty()) std::filesystem::remove_all(scratch, ignored);
  }
};

process_leftovers& leftovers() {
  static process_leftovers l;
  return l;
}

// Whether a listener answers on the abstract Unix socket @name.
bool broker_answers(const std::string& name) {
  const int s = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (s < 0) return false;
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path + 1, name.data(), std::min(name.size(), sizeof a.sun_path - 2));
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  const bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&a), len) == 0;
  ::close(s);
  return ok;
}

// Starts portresd in this (private) namespace and points the library at it.
// Returns why not, or "" when the library runs in broker mode.
std::string start_broker(const std::string& path, bool private_netns) {
  if (!private_netns) return "portresd needs root and a private network namespace for the benchmark";
  if (path.empty() || ::access(path.c_str(), X_OK) != 0) return "portresd not found at '" + path + "'";
  const std::string name = "portres-bench-" + std::to_string(::getpid());
  const pid_t pid = ::fork();
  if (pid < 0) return std::string("fork: ") + std::strerror(errno);
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::execl(path.c_str(), "portresd", "--foreground", "--socket", name.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  leftovers().broker = pid;
  const auto deadline = clock_type::now() + std::chrono::seconds(10);
  while (!broker_answers(name)) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      leftovers().broker = -1;
      return "portresd exited at start (status " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")";
    }
    if (clock_type::now() > deadline) return "portresd did not answer on @" + name + " within 10 s";
    ::usleep(5000);
  }
  // Asked for by name: the library fails rather than fall back silently.
  ::setenv("PORTRES_BROKER", name.c_str(), 1);
  const auto caps = portres::capabilities();
  if (!caps.machine_wide) return "the library is not in broker mode: " + caps.coordination;
  return "";
}

} // namespace

registry_choice& requested_registry() {
  static registry_choice choice;
  return choice;
}

const environment& prepare_environment() {
  static const environment env = [] {
    environment e;
    raise_fd_limit();
    // scripts/bench hands every run a scratch folder it removes at the end;
    // on its own, the binary makes one and removes it at exit.
    const char* given = std::getenv("PORTRES_BENCH_SCRATCH");
    const auto base = given && *given ? std::filesystem::path(given) : std::filesystem::temp_directory_path();
    const auto dir = base / ("portres-bench-" + std::to_string(::getpid()));
    leftovers().scratch = dir;
    std::filesystem::create_directories(dir / "run");
    std::filesystem::create_directories(dir / "state");
    ::setenv("PORTRES_RUNTIME_DIR", (dir / "run").c_str(), 1);
    ::setenv("PORTRES_STATE_DIR", (dir / "state").c_str(), 1);
    e.private_netns = enter_private_namespace();
    if (e.private_netns) {
      // 10,000 ephemeral ports: 99 % occupancy fits one child under the fd limit.
      e.ephemeral = {30000, 39999};
      set_ephemeral_range(e.ephemeral);
      e.occupancy_method = "private network namespace, ip_local_port_range narrowed to 30000-39999, "
                           "occupancy held by a child process";
    } else {
      std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
      unsigned first = 32768, last = 60999;
      in >> first >> last;
      e.ephemeral = {static_cast<std::uint16_t>(first), static_cast<std::uint16_t>(last)};
      e.occupancy_method = "host namespace (not root), ephemeral range " + std::to_string(first) + "-" +
                           std::to_string(last) + ", occupancy split across child processes";
    }
    const auto& asked = requested_registry();
    e.registry = asked.mode;
    if (asked.mode == "broker") {
      e.registry_error = start_broker(asked.portresd_path, e.private_netns);
    } else {
      ::setenv("PORTRES_BROKER", "off", 1);
    }
    const auto caps = portres::capabilities();
    benchmark::AddCustomContext("registry_mode", e.registry);
    benchmark::AddCustomContext("registry", e.registry_error.empty() ? caps.coordination : "not available: " + e.registry_error);
    benchmark::AddCustomContext("occupancy_method", e.occupancy_method);
    benchmark::AddCustomContext("ephemeral_range",
                                std::to_string(e.ephemeral.first) + "-" + std::to_string(e.ephemeral.last));
    std::fprintf(stderr, "portres bench: %s; registry %s%s\n", e.occupancy_method.c_str(), e.registry.c_str(),
                 e.registry_error.empty() ? "" : (" NOT AVAILABLE: " + e.registry_error).c_str());
    return e;
  }();
  return env;
}

std::string read_sysctl(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

bool write_sysctl(const char* path, const std::string& value) {
  std::ofstream out(path);
  out << value << '\n';
  return static_cast<bool>(out.flush());
}

void set_ephemeral_range(port_span span) {
  write_sysctl("/proc/sys/net/ipv4/ip_local_port_range", std::to_string(span.first) + " " + std::to_string(span.last));
}

occupancy::occupancy(int percent, pattern how) {
  const auto& env = prepare_environment();
  const auto total = env.ephemeral.count();
  const auto wanted = static_cast<std::uint32_t>(static_cast<std::uint64_t>(total) * static_cast<std::uint64_t>(percent) / 100);
  if (wanted == 0) return;
  std::vector<std::uint16_t> ports;
  if (how == pattern::clustered) {
    // One contiguous run from a random start (wrapping): the kernel's scan
    // has to walk through it from most starting offsets.
    std::mt19937 rng(42);
    const auto start = rng() % total;
    for (std::uint32_t i = 0; i < wanted; ++i) {
      ports.push_back(static_cast<std::uint16_t>(env.ephemeral.first + (start + i) % total));
    }
  } else {
    std::vector<std::uint16_t> all(total);
    std::iota(all.begin(), all.end(), env.ephemeral.first);
    std::shuffle(all.begin(), all.end(), std::mt19937(42));
    ports.assign(all.begin(), all.begin() + wanted);
  }
  constexpr std::size_t per_child = 15000;
  for (std::size_t begin = 0; begin < ports.size(); begin += per_child) {
    const std::vector<std::uint16_t> part(ports.begin() + static_cast<std::ptrdiff_t>(begin),
                                          ports.begin() + static_cast<std::ptrdiff_t>(std::min(ports.size(), begin + per_child)));
    int fds[2];
    if (::pipe(fds) != 0) break;
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(fds[0]);
      hold_ports(part, fds[1]);
    }
    ::close(fds[1]);
    std::uint32_t bound = 0;
    if (::read(fds[0], &bound, sizeof bound) != sizeof bound) bound = 0;
    ::close(fds[0]);
    children_.push_back(pid);
    held_ += bound;
  }
}

occupancy::~occupancy() {
  for (const int pid : children_) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
}

void latencies::report(benchmark::State& state, const std::string& prefix) {
  if (samples_.empty()) return;
  std::sort(samples_.begin(), samples_.end());
  auto at = [&](double q) { return samples_[std::min(samples_.size() - 1, static_cast<std::size_t>(q * static_cast<double>(samples_.size())))]; };
  state.counters[prefix + "p50_us"] = at(0.50);
  state.counters[prefix + "p99_us"] = at(0.99);
  state.counters[prefix + "p999_us"] = at(0.999);
  state.counters[prefix + "max_us"] = samples_.back();
  state.counters[prefix + "mean_us"] = std::accumulate(samples_.begin(), samples_.end(), 0.0) / static_cast<double>(samples_.size());
  state.counters[prefix + "samples"] = static_cast<double>(samples_.size());
}

std::string error_name(const std::error_code& ec) {
  // The samples' classification ("EADDRNOTAVAIL", "errno 99 (...)", "portres: ..."),
  // cut to a counter-name-safe tag.
  std::string tag = samples::error_kind(ec);
  if (const auto paren = tag.find(" ("); paren != std::string::npos) tag.erase(paren);
  for (auto& c : tag) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return tag;
}

void failure_counts::add(const std::error_code& ec) {
  ++by_kind_[error_name(ec)];
  ++total_;
}

void failure_counts::report(benchmark::State& state) const {
  state.counters["failures"] = static_cast<double>(total_);
  for (const auto& [kind, n] : by_kind_) state.counters["fail_" + kind] = static_cast<double>(n);
}

double process_cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

foreign_reservations::foreign_reservations(std::uint32_t count) {
  // At most 100 reservations per child: ten children hold 1,000.
  constexpr std::uint32_t per_child = 100;
  for (std::uint32_t begin = 0; begin < count; begin += per_child) {
    const auto n = std::min(per_child, count - begin);
    int to_child[2], from_child[2];
    if (::pipe2(to_child, O_CLOEXEC) != 0) break;
    if (::pipe2(from_child, O_CLOEXEC) != 0) {
      ::close(to_child[0]);
      ::close(to_child[1]);
      break;
    }
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::dup2(to_child[0], 0);
      ::dup2(from_child[1], 1);
      const std::string arg = "--hold-reservations=" + std::to_string(n);
      ::execl("/proc/self/exe", "portres_bench", arg.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    char buf[32] = {};
    pollfd p{from_child[0], POLLIN, 0};
    if (pid > 0 && ::poll(&p, 1, 20000) > 0 && ::read(from_child[0], buf, sizeof buf - 1) > 0) {
      held_ += static_cast<std::uint32_t>(std::strtoul(buf, nullptr, 10));
    }
    ::close(from_child[0]);
    if (pid > 0) children_.emplace_back(pid, to_child[1]);
    else ::close(to_child[1]);
  }
}

foreign_reservations::~foreign_reservations() {
  for (const auto& [pid, pipe] : children_) ::close(pipe); // the child exits at EOF
  for (const auto& [pid, pipe] : children_) {
    for (int i = 0; i < 200 && ::waitpid(pid, nullptr, WNOHANG) == 0; ++i) ::usleep(10000);
    if (::kill(pid, 0) == 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
}

int hold_reservations_main(std::uint32_t count) {
  asio::io_context io;
  std::vector<portres::runtime_reservation> held;
  for (std::uint32_t i = 0; i < count; ++i) {
    std::error_code ec;
    auto r = portres::acquire(io.get_executor(), portres::protocol::tcp, portres::port_range::wildcard(4), ec);
    if (ec) break;
    held.push_back(std::move(r));
  }
  std::printf("%zu\n", held.size());
  std::fflush(stdout);
  char c;
  while (::read(0, &c, 1) > 0) {
  }
  return 0;
}

sink_server::sink_server() {
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(0);
  ::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::listen(listener, 4096);
  socklen_t len = sizeof a;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
  endpoint_ = {asio::ip::address_v4::loopback(), ntohs(a.sin_port)};
  pid_ = ::fork();
  if (pid_ == 0) {
    // System calls only from here on (the parent may have threads).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    while (true) {
      const int c = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      // Wait (bounded) for the client's FIN or RST, then close: the client closed first.
      pollfd q{c, POLLIN, 0};
      char buf[64];
      if (::poll(&q, 1, 1000) > 0) (void)!::recv(c, buf, sizeof buf, 0);
      ::close(c);
    }
  }
  ::close(listener);
}

sink_server::~sink_server() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
}

} // namespace portres_bench
