// Helpers shared by loadgen and gateway: endpoints from "HOST:PORT", socket
// options per OS, and latency summaries.
#ifndef PORTRES_SAMPLES_NET_HPP
#define PORTRES_SAMPLES_NET_HPP

#include "cli/options.hpp"

#include <asio/ip/tcp.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <string>
#include <vector>

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

inline asio::ip::tcp::endpoint parse_endpoint(const std::string& text, const char* option) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) throw cli::usage_error(std::string(option) + " must be HOST:PORT, not '" + text + "'");
  std::error_code ec;
  const auto address = asio::ip::make_address(text.substr(0, colon), ec);
  unsigned port = 0;
  const auto port_text = text.substr(colon + 1);
  const auto r = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec || r.ec != std::errc{} || r.ptr != port_text.data() + port_text.size() || port > 65535) {
    throw cli::usage_error(std::string(option) + " must be an IP address and port, e.g. 127.0.0.1:8080, not '" + text + "'");
  }
  return {address, static_cast<unsigned short>(port)};
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

/// Latencies in microseconds; percentiles of what was added.
class latency_summary {
public:
  void add(double us) { samples_.push_back(us); }
  std::size_t size() const { return samples_.size(); }
  double percentile(double q) {
    if (samples_.empty()) return 0;
    std::sort(samples_.begin(), samples_.end());
    return samples_[std::min(samples_.size() - 1, static_cast<std::size_t>(q * static_cast<double>(samples_.size())))];
  }
  void clear() { samples_.clear(); }

private:
  std::vector<double> samples_;
};

} // namespace samples

#endif
