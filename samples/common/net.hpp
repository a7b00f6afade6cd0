// Helpers shared by loadgen, gateway and the benchmarks: socket options per
// OS, and failures named by errno.
#ifndef PORTRES_SAMPLES_NET_HPP
#define PORTRES_SAMPLES_NET_HPP

#include <asio/ip/tcp.hpp>

#include <cerrno>
#include <cstdint>
#include <string>

#if !defined(_WIN32)
#include <sys/resource.h>
#endif

namespace samples {

/// A listening socket. Asio's acceptor constructor sets SO_REUSEADDR, which
/// on Linux lets a restarted server bind while old connections sit in
/// TIME_WAIT, but on Windows lets any other socket bind the same port and
/// steal connections: there the listener takes SO_EXCLUSIVEADDRUSE instead.
inline asio::ip::tcp::acceptor make_listener(asio::io_context& io, const asio::ip::tcp::endpoint& at,
                                             int backlog = asio::socket_base::max_listen_connections) {
  asio::ip::tcp::acceptor listener(io, at.protocol());
#if defined(_WIN32)
  listener.set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_EXCLUSIVEADDRUSE>(true));
#else
  listener.set_option(asio::socket_base::reuse_address(true));
#endif
  listener.bind(at);
  listener.listen(backlog);
  return listener;
}

/// Options for a pool's client sockets. Linux: SO_REUSEADDR, so the lru
/// policy can bind a port whose last connection rests in TIME_WAIT (the
/// kernel's tcp_tw_reuse decides at connect), as autobind does. Windows:
/// nothing; SO_REUSEADDR there would let the socket take a port another
/// socket holds, and the OS picks the port from the reservation anyway.
inline void configure_client_socket([[maybe_unused]] asio::ip::tcp::socket& socket, std::error_code& ec) {
  ec.clear();
#if !defined(_WIN32)
  socket.set_option(asio::socket_base::reuse_address(true), ec);
#endif
}

/// Binds a client socket to `source` and lets the kernel choose the port at
/// connect() for the whole 4-tuple (IP_BIND_ADDRESS_NO_PORT, Linux 4.2+), so
/// one port serves many destinations as plain autobind does; elsewhere the
/// port is chosen at bind, one per socket.
inline void bind_source(asio::ip::tcp::socket& socket, const asio::ip::address& source, std::error_code& ec) {
#if defined(__linux__)
  socket.set_option(asio::detail::socket_option::boolean<IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT>(true), ec);
  if (ec) return;
#endif
  socket.bind({source, 0}, ec);
}

/// Raises this process's soft limit on open descriptors to its hard limit
/// and returns it (0 where the OS has no such limit to report).
inline std::uint64_t raise_descriptor_limit() {
#if defined(_WIN32)
  return 0;
#else
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return 0;
  if (r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &r) != 0) ::getrlimit(RLIMIT_NOFILE, &r);
  }
  return static_cast<std::uint64_t>(r.rlim_cur);
#endif
}

/// A failure's kind for counting: the errno name of a system error
/// ("EADDRNOTAVAIL", "ECONNREFUSED", "ETIMEDOUT", ...), else the error's
/// category and message ("portres: too many waiters").
inline std::string error_kind(const std::error_code& ec) {
  const std::string category = ec.category().name();
  if (category == "asio.system" || category == "system" || category == "generic") {
    switch (ec.value()) {
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EADDRINUSE: return "EADDRINUSE";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ECONNRESET: return "ECONNRESET";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EPIPE: return "EPIPE";
    case ENETUNREACH: return "ENETUNREACH";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOBUFS: return "ENOBUFS";
    case EACCES: return "EACCES";
    case ECANCELED: return "ECANCELED";
    default: return "errno " + std::to_string(ec.value()) + " (" + ec.message() + ")";
    }
  }
  if (category == "asio.misc" && ec.value() == 2) return "EOF"; // asio::error::eof: peer closed early
  return category + ": " + ec.message();
}

} // namespace samples

#endif
