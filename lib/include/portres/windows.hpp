// Conversions between portres types and the Windows port-reservation
// structures of <mstcpip.h>. Windows only.
//
// StartPort is in network byte order on the wire (and in the persistent
// functions); NumberOfPorts is in host byte order.
#ifndef PORTRES_WINDOWS_HPP
#define PORTRES_WINDOWS_HPP

#if !defined(_WIN32)
#error "<portres/windows.hpp> is for Windows builds only"
#endif

#include "portres/types.hpp"

#include <winsock2.h>
#include <mstcpip.h>

namespace portres::windows {

/// The range in wire form. @pre `r.validate()` succeeds (count fits a USHORT).
INET_PORT_RANGE to_inet_port_range(const port_range& r);
port_range from_inet_port_range(const INET_PORT_RANGE& wire) noexcept;

/// @pre `r.range.validate()` succeeds.
INET_PORT_RESERVATION_INSTANCE to_instance(const reservation& r);
reservation from_instance(const INET_PORT_RESERVATION_INSTANCE& wire) noexcept;

INET_PORT_RESERVATION_TOKEN to_inet_token(reservation_token t) noexcept;
reservation_token from_inet_token(const INET_PORT_RESERVATION_TOKEN& wire) noexcept;

/// The StartPort argument of the persistent iphlpapi functions.
USHORT to_network_port(std::uint16_t host_port) noexcept;
std::uint16_t from_network_port(USHORT wire_port) noexcept;

} // namespace portres::windows

#endif
