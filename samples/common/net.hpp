// Helpers shared by loadgen and gateway: endpoints from "HOST:PORT" and
// latency summaries.
#ifndef PORTRES_SAMPLES_NET_HPP
#define PORTRES_SAMPLES_NET_HPP

#include "common/options.hpp"

#include <asio/ip/tcp.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <string>
#include <vector>

namespace samples {

inline asio::ip::tcp::endpoint parse_endpoint(const std::string& text, const char* option) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) throw usage_error(std::string(option) + " must be HOST:PORT, not '" + text + "'");
  std::error_code ec;
  const auto address = asio::ip::make_address(text.substr(0, colon), ec);
  unsigned port = 0;
  const auto port_text = text.substr(colon + 1);
  const auto r = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec || r.ec != std::errc{} || r.ptr != port_text.data() + port_text.size() || port > 65535) {
    throw usage_error(std::string(option) + " must be an IP address and port, e.g. 127.0.0.1:8080, not '" + text + "'");
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
