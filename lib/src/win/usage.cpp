// Listings for tools on Windows: the sockets on a range of ports (iphlpapi
// tables carry the owning process); there is no listing of reservations.
#include "platform.hpp"

#include "portres/windows.hpp"
#include "win/ip_tables.hpp"

#include <gsl/gsl>

#include <vector>

#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <iphlpapi.h>

namespace portres::detail::platform {
namespace {

const char* tcp_state_name(DWORD state) {
  switch (state) {
  case MIB_TCP_STATE_LISTEN: return "LISTEN";
  case MIB_TCP_STATE_ESTAB: return "ESTABLISHED";
  case MIB_TCP_STATE_TIME_WAIT: return "TIME_WAIT";
  case MIB_TCP_STATE_CLOSE_WAIT: return "CLOSE_WAIT";
  case MIB_TCP_STATE_SYN_SENT: return "SYN_SENT";
  case MIB_TCP_STATE_FIN_WAIT1: return "FIN_WAIT1";
  case MIB_TCP_STATE_FIN_WAIT2: return "FIN_WAIT2";
  default: return "OTHER";
  }
}

} // namespace

std::vector<runtime_entry> runtime_entries(std::error_code& ec) {
  // Windows has no API that lists reservations (netsh shows excluded ranges).
  ec = error::os_unsupported;
  return {};
}

std::vector<port_user> port_users(protocol p, port_range r, std::error_code& ec) {
  ec.clear();
  std::vector<port_user> out;
  win::for_each_socket(p == protocol::tcp, [&](const auto& row) {
    const auto port = windows::from_network_port(static_cast<USHORT>(row.dwLocalPort));
    if (!r.contains(port)) return;
    const char* state = "BOUND";
    if constexpr (requires { row.dwState; }) state = tcp_state_name(row.dwState);
    out.push_back({port, state, static_cast<std::uint32_t>(row.dwOwningPid)});
  });
  return out;
}

} // namespace portres::detail::platform
