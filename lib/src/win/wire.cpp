#include "portres/windows.hpp"

#include <gsl/gsl>

namespace portres::windows {

USHORT to_network_port(std::uint16_t host_port) noexcept { return htons(host_port); }
std::uint16_t from_network_port(USHORT wire_port) noexcept { return ntohs(wire_port); }

INET_PORT_RANGE to_inet_port_range(const port_range& r) {
  Expects(!r.validate());
  INET_PORT_RANGE wire{};
  wire.StartPort = to_network_port(r.first());
  wire.NumberOfPorts = gsl::narrow<USHORT>(r.count());
  return wire;
}

port_range from_inet_port_range(const INET_PORT_RANGE& wire) noexcept {
  return {from_network_port(wire.StartPort), wire.NumberOfPorts};
}

INET_PORT_RESERVATION_TOKEN to_inet_token(reservation_token t) noexcept {
  INET_PORT_RESERVATION_TOKEN wire{};
  wire.Token = t.value();
  return wire;
}

reservation_token from_inet_token(const INET_PORT_RESERVATION_TOKEN& wire) noexcept {
  return reservation_token{wire.Token};
}

INET_PORT_RESERVATION_INSTANCE to_instance(const reservation& r) {
  INET_PORT_RESERVATION_INSTANCE wire{};
  wire.Reservation = to_inet_port_range(r.range);
  wire.Token = to_inet_token(r.token);
  return wire;
}

reservation from_instance(const INET_PORT_RESERVATION_INSTANCE& wire) noexcept {
  return {from_inet_port_range(wire.Reservation), from_inet_token(wire.Token)};
}

} // namespace portres::windows
