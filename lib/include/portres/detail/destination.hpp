// Where a TCP connection goes, as port sharing counts it: a reserved port
// carries one connection per destination (source address, peer address and
// port), because the kernel only needs the 4-tuple to be unique.
#ifndef PORTRES_DETAIL_DESTINATION_HPP
#define PORTRES_DETAIL_DESTINATION_HPP

#include <asio/ip/address.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>

namespace portres {

/// How much room a block has left towards one peer (summed over the source
/// addresses asked about).
struct destination_headroom {
  std::size_t free_ports = 0; ///< ports that could still carry a connection towards the peer
  std::size_t live = 0;       ///< connections recorded towards the peer
};

namespace detail {

struct destination {
  asio::ip::address source; ///< the local address bound (the any-address: the route decides)
  asio::ip::address peer;
  std::uint16_t peer_port = 0;
  friend bool operator==(const destination&, const destination&) = default;
};

struct destination_hash {
  std::size_t operator()(const destination& d) const noexcept {
    const std::hash<asio::ip::address> h;
    return h(d.source) * 31 + h(d.peer) * 131 + d.peer_port;
  }
};

} // namespace detail
} // namespace portres

#endif
