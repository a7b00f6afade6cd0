#include "bench_support.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>

#include "portres/portres.hpp"

#include <asio/io_context.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
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

// Child body: bind `ports`, report readiness, wait to be killed.
[[noreturn]] void hold_ports(const std::vector<std::uint16_t>& ports, int ready_fd) {
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

} // namespace

const environment& prepare_environment() {
  static const environment env = [] {
    environment e;
    raise_fd_limit();
    const auto dir = std::filesystem::temp_directory_path() / ("portres-bench-" + std::to_string(::getpid()));
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
    benchmark::AddCustomContext("occupancy_method", e.occupancy_method);
    benchmark::AddCustomContext("ephemeral_range",
                                std::to_string(e.ephemeral.first) + "-" + std::to_string(e.ephemeral.last));
    std::fprintf(stderr, "portres bench: %s\n", e.occupancy_method.c_str());
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
  // Asio's system category (named "asio.system") carries errno values too.
  if (ec.category() == std::system_category() || ec.category() == std::generic_category() ||
      std::strcmp(ec.category().name(), "asio.system") == 0) {
    switch (ec.value()) {
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EADDRINUSE: return "EADDRINUSE";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ECONNRESET: return "ECONNRESET";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EAGAIN: return "EAGAIN";
    case EPIPE: return "EPIPE";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOBUFS: return "ENOBUFS";
    case EACCES: return "EACCES";
    case EINPROGRESS: return "EINPROGRESS";
    default: return "errno" + std::to_string(ec.value());
    }
  }
  std::string tag = std::string(ec.category().name()) + "_" + std::to_string(ec.value());
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

double thread_cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_THREAD, &u);
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
  listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(0);
  ::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::listen(listener_, 4096);
  socklen_t len = sizeof a;
  ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
  endpoint_ = {asio::ip::address_v4::loopback(), ntohs(a.sin_port)};
  thread_ = std::thread([this] {
    while (!stop_) {
      pollfd p{listener_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int c = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      // Wait (bounded) for the client's FIN or RST, then close: the client closed first.
      pollfd q{c, POLLIN, 0};
      char buf[64];
      if (::poll(&q, 1, 1000) > 0) (void)!::recv(c, buf, sizeof buf, 0);
      ::close(c);
    }
  });
}

sink_server::~sink_server() {
  stop_ = true;
  thread_.join();
  ::close(listener_);
}

} // namespace portres_bench
