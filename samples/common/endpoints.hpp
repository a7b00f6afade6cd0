// What the samples are told to talk to and from: "HOST:PORT" endpoints
// (--target, --upstream, --listen; the first two repeatable) and local source
// addresses (--source, repeatable), checked before anything starts.
#ifndef PORTRES_SAMPLES_ENDPOINTS_HPP
#define PORTRES_SAMPLES_ENDPOINTS_HPP

#include "cli/options.hpp"
#include "common/net.hpp"

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <algorithm>
#include <charconv>
#include <string>
#include <vector>

namespace samples {

/// "127.0.0.1:8080", "[::1]:8080".
inline std::string to_string(const asio::ip::tcp::endpoint& e) {
  std::string out;
  if (e.address().is_v6()) out += '[';
  out += e.address().to_string();
  if (e.address().is_v6()) out += ']';
  out += ':';
  out += std::to_string(e.port());
  return out;
}

/// "127.0.0.1:8080" or "[::1]:8080". `allow_port_0`: a listener may ask for any port.
inline asio::ip::tcp::endpoint parse_endpoint(const std::string& text, const char* option, bool allow_port_0 = false) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) throw cli::usage_error(std::string(option) + " must be HOST:PORT, not '" + text + "'");
  auto host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  std::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  unsigned port = 0;
  const auto port_text = text.substr(colon + 1);
  const auto r = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec || r.ec != std::errc{} || r.ptr != port_text.data() + port_text.size() || port > 65535) {
    throw cli::usage_error(std::string(option) + " must be an IP address and port, e.g. 127.0.0.1:8080, not '" + text + "'");
  }
  if (port == 0 && !allow_port_0) throw cli::usage_error(std::string(option) + " needs a port other than 0: '" + text + "'");
  return {address, static_cast<unsigned short>(port)};
}

/// Every value of a repeatable endpoint option, all of one IP family.
inline std::vector<asio::ip::tcp::endpoint> parse_endpoints(const std::vector<std::string>& texts, const char* option) {
  std::vector<asio::ip::tcp::endpoint> out;
  for (const auto& t : texts) out.push_back(parse_endpoint(t, option));
  for (std::size_t i = 1; i < out.size(); ++i) {
    if (out[i].address().is_v6() != out[0].address().is_v6()) {
      throw cli::usage_error(std::string(option) + " mixes IPv4 and IPv6 (" + texts[0] + ", " + texts[i] +
                             "): give one family");
    }
  }
  return out;
}

/// Local source addresses (--source, repeatable). Each must be a specific
/// address of this machine (a socket can bind it), given once, of the
/// peers' family; none means "let the system choose".
inline std::vector<asio::ip::address> parse_sources(const std::vector<std::string>& texts,
                                                    const std::vector<asio::ip::tcp::endpoint>& peers) {
  std::vector<asio::ip::address> out;
  asio::io_context io;
  for (const auto& t : texts) {
    std::error_code ec;
    const auto a = asio::ip::make_address(t, ec);
    if (ec) throw cli::usage_error("--source must be an IP address, e.g. 127.0.0.2, not '" + t + "'");
    if (a.is_unspecified()) {
      throw cli::usage_error("--source must be a specific address, not '" + t + "' (leave --source out to let the system choose)");
    }
    if (std::find(out.begin(), out.end(), a) != out.end()) throw cli::usage_error("--source " + t + " is given twice");
    if (!peers.empty() && a.is_v6() != peers.front().address().is_v6()) {
      throw cli::usage_error("--source " + t + " is not of the same IP family as " + to_string(peers.front()));
    }
    // The probe takes no port (bind_source defers it to connect), so a full port range cannot fail it.
    asio::ip::tcp::socket probe(io, a.is_v6() ? asio::ip::tcp::v6() : asio::ip::tcp::v4());
    bind_source(probe, a, ec);
#if defined(_WIN32)
    const bool not_local = ec.value() == WSAEADDRNOTAVAIL;
#else
    const bool not_local = ec.value() == EADDRNOTAVAIL;
#endif
    if (not_local) {
      throw cli::usage_error("--source " + t + " is not an address of this machine (bind: " + ec.message() + ")");
    }
    if (ec) throw cli::usage_error("--source " + t + " cannot be bound: " + ec.message());
    out.push_back(a);
  }
  return out;
}

/// A pool's source addresses: the ones given, else the any-address of the
/// peer's family (the route picks the address, the pool the port).
inline std::vector<asio::ip::address> pool_sources(const std::vector<asio::ip::address>& sources,
                                                   const asio::ip::tcp::endpoint& peer) {
  if (!sources.empty()) return sources;
  if (peer.address().is_v6()) return {asio::ip::address(asio::ip::address_v6::any())};
  return {asio::ip::address(asio::ip::address_v4::any())};
}

} // namespace samples

#endif
