// gateway's relay: accepts clients, sends each request to the next upstream
// in turn over a connection from the pool (or kernel autobind), relays the
// reply, and counts what happened per upstream.
#ifndef PORTRES_SAMPLES_GATEWAY_RELAY_HPP
#define PORTRES_SAMPLES_GATEWAY_RELAY_HPP

#include "common/tally.hpp"

#include <portres/portres.hpp>

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>

#include <cstdint>
#include <vector>

namespace gateway {

using tcp = asio::ip::tcp;

struct upstream {
  tcp::endpoint at;
  std::uint64_t requests = 0, relayed = 0, errors = 0;
  std::size_t live = 0; ///< connections to it open now
};

struct counters {
  std::uint64_t requests = 0, relayed = 0, upstream_errors = 0;
  std::uint64_t abandoned = 0;     ///< requests whose client went away before its reply was sent
  std::uint64_t client_errors = 0; ///< clients lost before a whole request arrived (or at accept)
  samples::error_tally upstream_by_kind;
  std::uint16_t lowest_port = 65535, highest_port = 0; ///< pool: the upstream source ports seen
  std::vector<upstream> upstreams;
};

class relay {
public:
  /// `pool` null: kernel autobind, from `sources` in turn when there are any
  /// (the pool spreads over its own sources).
  relay(tcp::acceptor& listener, const std::vector<tcp::endpoint>& upstreams, std::vector<asio::ip::address> sources,
        portres::socket_pool<tcp>* pool);
  /// Starts accepting on the listener's executor.
  void start();
  const counters& figures() const noexcept { return c_; }

private:
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> serve(tcp::socket client);
  /// Counts the failure and answers the client 502.
  asio::awaitable<void> upstream_failed(upstream& to, const std::error_code& ec, tcp::socket& client);

  tcp::acceptor& listener_;
  std::vector<asio::ip::address> sources_;
  portres::socket_pool<tcp>* pool_;
  counters c_;
  std::size_t next_ = 0; // round robin over the upstreams
};

/// A trivial upstream for tests and demos: answers every request and closes.
asio::awaitable<void> builtin_upstream(tcp::acceptor& acceptor);

} // namespace gateway

#endif
