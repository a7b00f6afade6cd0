// Listings for tools on Windows: the sockets on a range of ports (iphlpapi
// tables carry the owning process); there is no listing of reservations.
#include "platform.hpp"

#include "portres/windows.hpp"

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

template <class Table, class Getter, class TableClass>
void collect(Getter get, ULONG family, TableClass table_class, bool tcp, port_range range, std::vector<port_user>& out) {
  ULONG size = 0;
  if (get(nullptr, &size, FALSE, family, table_class, 0) != ERROR_INSUFFICIENT_BUFFER) return;
  std::vector<unsigned char> buffer(size + 1024);
  size = gsl::narrow<ULONG>(buffer.size());
  if (get(buffer.data(), &size, FALSE, family, table_class, 0) != NO_ERROR) return;
  const auto* table = reinterpret_cast<const Table*>(buffer.data());
  for (DWORD i = 0; i < table->dwNumEntries; ++i) {
    const auto& row = table->table[i];
    const auto port = windows::from_network_port(static_cast<USHORT>(row.dwLocalPort));
    if (!range.contains(port)) continue;
    const char* state = "BOUND";
    if constexpr (requires { row.dwState; }) state = tcp_state_name(row.dwState);
    out.push_back({port, state, static_cast<std::uint32_t>(row.dwOwningPid)});
  }
  (void)tcp;
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
  if (p == protocol::tcp) {
    collect<MIB_TCPTABLE_OWNER_PID>(::GetExtendedTcpTable, AF_INET, TCP_TABLE_OWNER_PID_ALL, true, r, out);
    collect<MIB_TCP6TABLE_OWNER_PID>(::GetExtendedTcpTable, AF_INET6, TCP_TABLE_OWNER_PID_ALL, true, r, out);
  } else {
    collect<MIB_UDPTABLE_OWNER_PID>(::GetExtendedUdpTable, AF_INET, UDP_TABLE_OWNER_PID, false, r, out);
    collect<MIB_UDP6TABLE_OWNER_PID>(::GetExtendedUdpTable, AF_INET6, UDP_TABLE_OWNER_PID, false, r, out);
  }
  return out;
}

} // namespace portres::detail::platform
