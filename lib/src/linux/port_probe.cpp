// platform::unheld_ports on Linux: the kernel's own bind-conflict check as
// an exact, per-port answer to "does anything hold this port?".
//
// A socket without SO_REUSEADDR or SO_REUSEPORT, bound to no device, asking
// for [::]:port with IPV6_V6ONLY off (0.0.0.0:port where the kernel has no
// IPv6) conflicts with every socket of the protocol on that port in this
// network namespace: any local address of either family, every state
// (bound only, listening, connected, TIME_WAIT), whatever options the holder
// set and however many descriptors (dup'ed, inherited) keep it open. The
// bind either fails (held) or succeeds and the probe is closed at once (a
// bound, unconnected socket leaves nothing behind). One exception: TCP
// sockets bound to a VRF device (net.ipv4.tcp_l3mdev_accept 0, the default)
// live in that VRF's own port table, which this probe (in the default one)
// does not see, as the kernel's binds do not (UDP has one table: it sees them).
#include "platform.hpp"

#include "linux/probe_ring.hpp"
#include "linux/state_files.hpp"

#include <gsl/gsl>

#include <atomic>
#include <cerrno>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace portres::detail::platform {
namespace {

std::atomic<bool> no_ipv6{false}; // the kernel has no IPv6: probes are 0.0.0.0:port

// After EAFNOSUPPORT for AF_INET6: true (and probes go IPv4 from now on) only
// where the kernel has no IPv6 at all (built without it, or ipv6.disable=1:
// no /proc/sys/net/ipv6). A seccomp filter (systemd's RestrictAddressFamilies=)
// or an LSM refuses AF_INET6 the same way in a kernel that has it; there an
// IPv4 probe would not see an IPv6-only holder, so the probe cannot tell.
bool kernel_lacks_ipv6() {
  if (::access("/proc/sys/net/ipv4", F_OK) != 0) return false; // no /proc to ask: unknown
  if (::access("/proc/sys/net/ipv6", F_OK) == 0 || errno != ENOENT) return false;
  no_ipv6.store(true, std::memory_order_relaxed);
  return true;
}

int open_probe(protocol p, bool& v6, std::error_code& ec) {
  const int type = (p == protocol::tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC;
  v6 = !no_ipv6.load(std::memory_order_relaxed);
  if (v6) {
    const int fd = ::socket(AF_INET6, type, 0);
    if (fd >= 0) {
      const int off = 0; // one socket for both families, whatever net.ipv6.bindv6only says
      if (::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) == 0) return fd;
      ec = {errno, std::system_category()};
      ::close(fd);
      return -1;
    }
    if (errno != EAFNOSUPPORT || !kernel_lacks_ipv6()) {
      ec = {errno, std::system_category()};
      return -1;
    }
    v6 = false;
  }
  const int fd = ::socket(AF_INET, type, 0);
  if (fd < 0) ec = {errno, std::system_category()};
  return fd;
}

int bind_wildcard(int fd, bool v6, std::uint16_t port) {
  if (v6) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    a.sin6_addr = in6addr_any;
    return ::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  return ::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
}

} // namespace

std::uint32_t unheld_ports(protocol p, std::span<const std::uint16_t> ports, std::error_code& ec) {
  Expects(ports.size() <= 32);
  bool used = false;
  auto free = linux_probe::ring_unheld(p, !no_ipv6.load(std::memory_order_relaxed), ports, used, ec);
  if (used && ec == std::errc::address_family_not_supported && kernel_lacks_ipv6()) {
    free = linux_probe::ring_unheld(p, false, ports, used, ec);
  }
  if (used) return free;
  // No ring: the same probes, one system call at a time.
  ec.clear();
  free = 0;
  linux_files::unique_fd probe; // unbound: it serves every port found held
  bool v6 = true;
  for (std::size_t i = 0; i < ports.size(); ++i) {
    if (!probe) {
      probe = linux_files::unique_fd(open_probe(p, v6, ec));
      if (ec) return 0;
    }
    if (bind_wildcard(probe.get(), v6, ports[i]) == 0) {
      free |= std::uint32_t{1} << i;
      probe = linux_files::unique_fd(); // bound now: closed, which frees the port again
    } else if (errno != EADDRINUSE) {
      // EACCES (a privileged port) and the like: the probe cannot tell.
      ec = {errno, std::system_category()};
      return 0;
    }
  }
  return free;
}

} // namespace portres::detail::platform
