// Linux socket and kernel queries for the portable core.
#include "platform.hpp"

#include "linux/proc_net.hpp"
#include "linux/sock_diag.hpp"
#include "linux/state_files.hpp"

#include <asio/ip/tcp.hpp>

#include <gsl/gsl>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

namespace portres::detail::platform {
namespace {

std::error_code last_error() { return {errno, std::system_category()}; }

template <class T>
bool get_option(native_socket s, int level, int name, T& value) {
  socklen_t size = sizeof value;
  return ::getsockopt(s, level, name, &value, &size) == 0;
}

// Marks the local ports of one /proc/net table that fall inside `range`.
// Every state counts (listening, connected, TIME_WAIT).
// False: the table could not be read (EMFILE, no /proc...), so "nothing
// held" would be a guess; only an IPv6 table may be missing (no IPv6 here).
bool mark_from_table(const char* path, bool may_be_missing, port_range range, port_bitmap& held,
                     std::error_code& ec) {
  std::FILE* file = std::fopen(path, "re");
  if (file == nullptr) {
    if (errno == ENOENT && may_be_missing) return true;
    ec = last_error();
    return false;
  }
  auto close = gsl::finally([file] { std::fclose(file); });
  char line[512];
  while (std::fgets(line, sizeof line, file) != nullptr) {
    const auto row = linux_proc::parse_row(line);
    if (row && range.contains(row->local_port)) held.set(row->local_port);
  }
  return true;
}

} // namespace

bool socket_key_is_unique() noexcept { return true; }

native_socket open_socket(bool ipv6, protocol p, std::error_code& ec) {
  const int fd = ::socket(ipv6 ? AF_INET6 : AF_INET, (p == protocol::tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
  ec = fd < 0 ? last_error() : std::error_code();
  return fd;
}

void close_socket(native_socket s) noexcept { ::close(s); }

socket_info inspect(native_socket s, std::error_code& ec) {
  ec.clear();
  socket_info info;
  int type = 0, proto = 0, domain = 0;
  if (!get_option(s, SOL_SOCKET, SO_TYPE, type)) {
    ec = errno == EBADF ? std::error_code(error::socket_not_open) : std::error_code(error::unsupported_socket);
    return info;
  }
  get_option(s, SOL_SOCKET, SO_PROTOCOL, proto);
  get_option(s, SOL_SOCKET, SO_DOMAIN, domain);
  if ((domain != AF_INET && domain != AF_INET6) ||
      !((type == SOCK_STREAM && proto == IPPROTO_TCP) || (type == SOCK_DGRAM && proto == IPPROTO_UDP))) {
    ec = error::unsupported_socket;
    return info;
  }
  info.proto = type == SOCK_STREAM ? protocol::tcp : protocol::udp;
  info.ipv6 = domain == AF_INET6;
  sockaddr_storage local{};
  socklen_t size = sizeof local;
  if (::getsockname(s, reinterpret_cast<sockaddr*>(&local), &size) == 0) {
    info.bound_port = ntohs(info.ipv6 ? reinterpret_cast<sockaddr_in6&>(local).sin6_port
                                      : reinterpret_cast<sockaddr_in&>(local).sin_port);
  }
  // The cookie is unique for the socket's lifetime, unlike the fd number.
  std::uint64_t cookie = 0;
  if (!get_option(s, SOL_SOCKET, SO_COOKIE, cookie)) cookie = static_cast<std::uint64_t>(s);
  info.key = cookie;
  return info;
}

std::uint64_t socket_key(native_socket s, std::error_code& ec) {
  std::uint64_t cookie = 0;
  if (get_option(s, SOL_SOCKET, SO_COOKIE, cookie)) {
    ec.clear();
    return cookie;
  }
  if (errno == EBADF) {
    ec = error::socket_not_open;
    return 0;
  }
  return inspect(s, ec).key; // not a socket, or a kernel without SO_COOKIE
}

std::error_code bind_to(native_socket s, const asio::ip::address& address, std::uint16_t port) {
  const asio::ip::tcp::endpoint local(address, port); // same sockaddr for UDP
  if (::bind(s, local.data(), gsl::narrow_cast<socklen_t>(local.size())) != 0) return last_error();
  return {};
}

bool shares_ports_safely() noexcept { return true; }

std::error_code share_address(native_socket s) {
  // SO_REUSEPORT, not SO_REUSEADDR: the kernel lets SO_REUSEADDR sockets of
  // different users share a port (neither listening), so another user could
  // bind beside the block's sockets; SO_REUSEPORT sharing needs the same uid.
  const int on = 1;
  if (::setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0) return last_error();
  return {};
}

bool socket_alive(native_socket s, std::uint64_t key, std::uint16_t) noexcept {
  // The cookie is never reused: a closed descriptor, or one now naming
  // another socket, answers differently.
  std::uint64_t cookie = 0;
  return get_option(s, SOL_SOCKET, SO_COOKIE, cookie) && cookie == key;
}

port_bitmap held_ports(protocol p, port_range range, std::error_code& ec) {
  ec.clear();
  // sock_diag first: filtered in the kernel, and it sees bound-but-idle TCP
  // sockets that /proc/net/tcp never lists. /proc is the fallback.
  std::error_code diag_ec;
  if (auto held = sock_diag::held_ports(p, range, diag_ec)) return *held;
  port_bitmap held;
  const bool tcp = p == protocol::tcp;
  if (!mark_from_table(tcp ? "/proc/net/tcp" : "/proc/net/udp", false, range, held, ec) ||
      !mark_from_table(tcp ? "/proc/net/tcp6" : "/proc/net/udp6", true, range, held, ec)) {
    return {}; // unreadable (ec set): never "nothing held"
  }
  return held;
}


port_range ephemeral_range() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  unsigned first = 0, last = 0;
  if (in >> first >> last && first > 0 && first <= last && last <= port_range::max_port) {
    return {gsl::narrow_cast<std::uint16_t>(first), last - first + 1};
  }
  return {32768, 28232}; // the kernel default
}

std::string name() {
  utsname u{};
  if (::uname(&u) != 0) return "Linux";
  return std::string(u.sysname) + " " + u.release;
}

std::uint32_t process_id() noexcept { return static_cast<std::uint32_t>(::getpid()); }

std::uint64_t os_random_u64() { return linux_files::os_random_u64(); }

bool socket_reuse(std::string& reason) {
  reason = "Linux cannot reconnect a TCP socket after a disconnect; pools close it and create a fresh one";
  return false;
}

void disconnect_for_reuse(const asio::any_io_executor&, native_socket, status_completion done) {
  done(error::os_unsupported);
}

} // namespace portres::detail::platform
