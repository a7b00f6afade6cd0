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

/// Every TCP (all states) or UDP socket row of both address families, with
/// its owning process (port_users). The owner costs: Wine looks it up per row
/// (about 3 ms a row, 5 s for 1,500 TIME_WAIT rows); held_ports uses
/// for_each_local_port instead.
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

using basic_table_fn = ULONG(WINAPI*)(PVOID, PULONG, BOOL);

/// iphlpapi's GetTcpTable, GetTcp6Table, GetUdpTable or GetUdp6Table (no
/// owning process), loaded from System32, or null.
basic_table_fn basic_table(bool tcp, bool ipv6);

/// Calls `visit(row)` for every row `get` returns, asked once with a buffer
/// the size of the last answer (each call walks the whole table), again
/// only if the table grew past it.
template <class Table, class Visit>
void for_each_basic_row(basic_table_fn get, std::vector<unsigned char>& buffer, Visit visit) {
  if (!get) return;
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (buffer.size() < sizeof(Table)) buffer.resize(sizeof(Table));
    ULONG size = gsl::narrow<ULONG>(buffer.size());
    const ULONG status = get(buffer.data(), &size, FALSE);
    if (status == ERROR_INSUFFICIENT_BUFFER) {
      buffer.resize(size + size / 4 + 1024); // the table may grow before the next call
      continue;
    }
    if (status != NO_ERROR) return;
    const auto* table = reinterpret_cast<const Table*>(buffer.data());
    for (DWORD i = 0; i < table->dwNumEntries; ++i) visit(table->table[i]);
    return;
  }
}

/// The local port of every TCP (all states) or UDP socket of both address
/// families, as the tables give it (network order: windows::from_network_port).
template <class Visit>
void for_each_local_port(bool tcp, Visit visit) {
  thread_local std::vector<unsigned char> buffer;
  const auto port = [&](const auto& row) { visit(static_cast<USHORT>(row.dwLocalPort)); };
  if (tcp) {
    for_each_basic_row<MIB_TCPTABLE>(basic_table(true, false), buffer, port);
    for_each_basic_row<MIB_TCP6TABLE>(basic_table(true, true), buffer, port);
  } else {
    for_each_basic_row<MIB_UDPTABLE>(basic_table(false, false), buffer, port);
    for_each_basic_row<MIB_UDP6TABLE>(basic_table(false, true), buffer, port);
  }
}

} // namespace portres::detail::win

#endif
