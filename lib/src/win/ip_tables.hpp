// Walking iphlpapi's extended TCP/UDP tables (GetExtendedTcpTable,
// GetExtendedUdpTable): one helper for every reader.
#ifndef PORTRES_SRC_WIN_IP_TABLES_HPP
#define PORTRES_SRC_WIN_IP_TABLES_HPP

#include <gsl/gsl>

#include <vector>

#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <iphlpapi.h>

namespace portres::detail::win {

using extended_table_fn = DWORD(WINAPI*)(PVOID, PDWORD, BOOL, ULONG, ULONG, ULONG);

/// iphlpapi's GetExtendedTcpTable or GetExtendedUdpTable, loaded from
/// System32 (wine.hpp), or null.
extended_table_fn extended_table(bool tcp);

/// Calls `visit(row)` for every row of the table `get` returns for `family`.
template <class Table, class Visit>
void for_each_row(extended_table_fn get, ULONG family, ULONG table_class, Visit visit) {
  if (!get) return;
  ULONG size = 0;
  if (get(nullptr, &size, FALSE, family, table_class, 0) != ERROR_INSUFFICIENT_BUFFER) return;
  std::vector<unsigned char> buffer(size + 1024); // the table may grow between the two calls
  size = gsl::narrow<ULONG>(buffer.size());
  if (get(buffer.data(), &size, FALSE, family, table_class, 0) != NO_ERROR) return;
  const auto* table = reinterpret_cast<const Table*>(buffer.data());
  for (DWORD i = 0; i < table->dwNumEntries; ++i) visit(table->table[i]);
}

/// Every TCP (all states) or UDP socket row of both address families.
template <class Visit>
void for_each_socket(bool tcp, Visit visit) {
  const auto get = extended_table(tcp);
  if (tcp) {
    for_each_row<MIB_TCPTABLE_OWNER_PID>(get, AF_INET, TCP_TABLE_OWNER_PID_ALL, visit);
    for_each_row<MIB_TCP6TABLE_OWNER_PID>(get, AF_INET6, TCP_TABLE_OWNER_PID_ALL, visit);
  } else {
    for_each_row<MIB_UDPTABLE_OWNER_PID>(get, AF_INET, UDP_TABLE_OWNER_PID, visit);
    for_each_row<MIB_UDP6TABLE_OWNER_PID>(get, AF_INET6, UDP_TABLE_OWNER_PID, visit);
  }
}

} // namespace portres::detail::win

#endif
