// Windows socket and system queries for the portable core, and the
// persistent reservations of iphlpapi.
#include "platform.hpp"

#include "portres/windows.hpp"
#include "win/ip_tables.hpp"
#include "win/wine.hpp"
#include "win/winsock_seam.hpp"

#include <asio/ip/tcp.hpp>

#include <gsl/gsl>

#include <memory>
#include <random>
#include <vector>

#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <iphlpapi.h>

namespace portres::detail {
namespace win {

winsock_seam& seam() noexcept {
  static winsock_seam instance;
  return instance;
}

FARPROC iphlpapi_function(const char* name) {
  if (auto fake = seam().resolve) return fake(name);
  return system_function(L"iphlpapi.dll", name);
}

FARPROC system_function(const wchar_t* dll, const char* name) {
  // From System32 only, never the program's folder or the current one,
  // where someone may have put a DLL of the same name (portres.exe is run
  // elevated from wherever it was saved). The library imports no DLL that
  // is not one of Windows' KnownDLLs statically for the same reason.
  const HMODULE module = ::LoadLibraryExW(dll, nullptr, LOAD_LIBRARY_SEARCH_SYSTEM32);
  return module ? ::GetProcAddress(module, name) : nullptr;
}

extended_table_fn extended_table(bool tcp) {
  static const auto tcp_table =
      reinterpret_cast<extended_table_fn>(reinterpret_cast<void*>(system_function(L"iphlpapi.dll", "GetExtendedTcpTable")));
  static const auto udp_table =
      reinterpret_cast<extended_table_fn>(reinterpret_cast<void*>(system_function(L"iphlpapi.dll", "GetExtendedUdpTable")));
  return tcp ? tcp_table : udp_table;
}

basic_table_fn basic_table(bool tcp, bool ipv6) {
  static const basic_table_fn tables[2][2] = {
      {reinterpret_cast<basic_table_fn>(reinterpret_cast<void*>(system_function(L"iphlpapi.dll", "GetUdpTable"))),
       reinterpret_cast<basic_table_fn>(reinterpret_cast<void*>(system_function(L"iphlpapi.dll", "GetUdp6Table")))},
      {reinterpret_cast<basic_table_fn>(reinterpret_cast<void*>(system_function(L"iphlpapi.dll", "GetTcpTable"))),
       reinterpret_cast<basic_table_fn>(reinterpret_cast<void*>(system_function(L"iphlpapi.dll", "GetTcp6Table")))}};
  return tables[tcp][ipv6];
}

std::string wine_version() {
  const HMODULE ntdll = ::GetModuleHandleW(L"ntdll.dll");
  if (!ntdll) return {};
  using wine_version_fn = const char*(CDECL*)();
  auto get = reinterpret_cast<wine_version_fn>(reinterpret_cast<void*>(::GetProcAddress(ntdll, "wine_get_version")));
  return get ? get() : std::string();
}

} // namespace win

namespace platform {
namespace {

std::error_code wsa_error() { return {::WSAGetLastError(), std::system_category()}; }

using persistent_fn = ULONG(WINAPI*)(USHORT, USHORT, PULONG64);
using delete_fn = ULONG(WINAPI*)(USHORT, USHORT);

// Resolved at run time: Wine does not export these, and a call through the
// import library would abort the process there.
FARPROC iphlpapi_function(const char* name) { return win::iphlpapi_function(name); }

template <class Fn>
Fn resolve(protocol p, const char* tcp_name, const char* udp_name) {
  return reinterpret_cast<Fn>(reinterpret_cast<void*>(iphlpapi_function(p == protocol::tcp ? tcp_name : udp_name)));
}

std::error_code from_status(ULONG status) {
  if (status == NO_ERROR) return {};
  return {static_cast<int>(status), std::system_category()};
}

// Lookup and Delete answer ERROR_NOT_FOUND when no persistent reservation
// has exactly this block: that is error::unknown_token (persistent.hpp).
std::error_code from_lookup_status(ULONG status) {
  if (status == ERROR_NOT_FOUND) return error::unknown_token;
  return from_status(status);
}

} // namespace

bool socket_key_is_unique() noexcept { return false; }

socket_info inspect(native_socket s, std::error_code& ec) {
  ec.clear();
  socket_info info;
  WSAPROTOCOL_INFOW protocol_info{};
  int size = sizeof protocol_info;
  if (::getsockopt(s, SOL_SOCKET, SO_PROTOCOL_INFOW, reinterpret_cast<char*>(&protocol_info), &size) != 0) {
    const int code = ::WSAGetLastError();
    ec = code == WSAENOTSOCK ? std::error_code(error::socket_not_open) : std::error_code(error::unsupported_socket);
    return info;
  }
  const bool tcp = protocol_info.iSocketType == SOCK_STREAM && protocol_info.iProtocol == IPPROTO_TCP;
  const bool udp = protocol_info.iSocketType == SOCK_DGRAM && protocol_info.iProtocol == IPPROTO_UDP;
  if (!(tcp || udp) || (protocol_info.iAddressFamily != AF_INET && protocol_info.iAddressFamily != AF_INET6)) {
    ec = error::unsupported_socket;
    return info;
  }
  info.proto = tcp ? protocol::tcp : protocol::udp;
  info.ipv6 = protocol_info.iAddressFamily == AF_INET6;
  sockaddr_storage local{};
  int length = sizeof local;
  // getsockname fails (WSAEINVAL) while the socket is unbound.
  if (::getsockname(s, reinterpret_cast<sockaddr*>(&local), &length) == 0) {
    info.bound_port = ntohs(info.ipv6 ? reinterpret_cast<sockaddr_in6&>(local).sin6_port
                                      : reinterpret_cast<sockaddr_in&>(local).sin_port);
  }
  info.key = static_cast<std::uint64_t>(s);
  return info;
}

std::uint64_t socket_key(native_socket s, std::error_code& ec) { return inspect(s, ec).key; }

std::error_code bind_to(native_socket s, const asio::ip::address& address, std::uint16_t port) {
  const asio::ip::tcp::endpoint local(address, port);
  if (win::seam().bind(s, local.data(), gsl::narrow_cast<int>(local.size())) != 0) return wsa_error();
  return {};
}

std::error_code share_address(native_socket s) {
  const BOOL on = TRUE;
  if (::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, reinterpret_cast<const char*>(&on), sizeof on) != 0) return wsa_error();
  return {};
}

bool socket_alive(native_socket s, std::uint64_t key, std::uint16_t port) noexcept {
  // Handle values are reused after close: the handle must still name a
  // socket bound to the same port.
  if (static_cast<std::uint64_t>(s) != key) return false;
  sockaddr_storage local{};
  int length = sizeof local;
  if (::getsockname(s, reinterpret_cast<sockaddr*>(&local), &length) != 0) return false;
  const auto bound = ntohs(local.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6&>(local).sin6_port
                                                      : reinterpret_cast<sockaddr_in&>(local).sin_port);
  return bound == port;
}

port_bitmap held_ports(protocol p, port_range range, std::error_code& ec) {
  ec.clear();
  port_bitmap held;
  // The tables without owning processes: ports are all that is asked, and
  // the owner lookup is what made a query slow (ip_tables.hpp).
  win::for_each_local_port(p == protocol::tcp, [&](USHORT wire_port) {
    const auto port = windows::from_network_port(wire_port);
    if (range.contains(port)) held.set(port);
  });
  return held;
}

std::uint32_t unheld_ports(protocol, std::span<const std::uint16_t>, std::error_code& ec) {
  // Windows' bind-conflict rules differ (wildcard against specific addresses,
  // TIME_WAIT, SO_EXCLUSIVEADDRUSE) and no probe has been verified exact on a
  // real Windows: reclaiming keeps to the held-ports listing.
  ec = error::os_unsupported;
  return 0;
}

port_range ephemeral_range() {
  // Windows' default dynamic range; it is also the IANA range.
  return {49152, 16384};
}

std::string name() {
  using rtl_get_version_fn = LONG(WINAPI*)(OSVERSIONINFOW*);
  const HMODULE ntdll = ::GetModuleHandleW(L"ntdll.dll");
  std::string text = "Windows";
  if (ntdll) {
    if (auto get = reinterpret_cast<rtl_get_version_fn>(
            reinterpret_cast<void*>(::GetProcAddress(ntdll, "RtlGetVersion")))) {
      OSVERSIONINFOW v{};
      v.dwOSVersionInfoSize = sizeof v;
      if (get(&v) == 0) {
        text += " " + std::to_string(v.dwMajorVersion) + "." + std::to_string(v.dwMinorVersion) + "." +
                std::to_string(v.dwBuildNumber);
      }
    }
  }
  return text;
}

std::uint32_t process_id() noexcept { return ::GetCurrentProcessId(); }

native_socket open_socket(bool ipv6, protocol p, std::error_code& ec) {
  const bool tcp = p == protocol::tcp;
  const SOCKET s = ::WSASocketW(ipv6 ? AF_INET6 : AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, tcp ? IPPROTO_TCP : IPPROTO_UDP,
                                nullptr, 0, WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
  if (s == INVALID_SOCKET) {
    ec = wsa_error();
    return s;
  }
  // IPv6 sockets are dual-mode (Windows' default is IPv6-only), so that a
  // pool can bind them to v4-mapped addresses (see backend::pool_address).
  const DWORD v6_only = 0;
  if (ipv6 &&
      win::seam().set_option(s, IPPROTO_IPV6, IPV6_V6ONLY, reinterpret_cast<const char*>(&v6_only), sizeof v6_only) != 0) {
    ec = wsa_error();
    ::closesocket(s);
    return INVALID_SOCKET;
  }
  ec.clear();
  return s;
}

void close_socket(native_socket s) noexcept { ::closesocket(s); }

std::uint64_t os_random_u64() {
  std::random_device os; // rand_s on MinGW: the OS generator
  while (true) {
    const std::uint64_t value = (std::uint64_t{os()} << 32) | os();
    if (value != 0) return value;
  }
}

// Create and Lookup share one signature: (StartPort in network order, count, token out).
static reservation_token call_with_token(protocol p, port_range r, const char* tcp_name, const char* udp_name,
                                         std::error_code (*map)(ULONG), std::error_code& ec) {
  auto fn = resolve<persistent_fn>(p, tcp_name, udp_name);
  if (!fn) {
    ec = error::os_unsupported;
    return {};
  }
  ULONG64 token = 0;
  ec = map(fn(windows::to_network_port(r.first()), gsl::narrow<USHORT>(r.count()), &token));
  return ec ? reservation_token{} : reservation_token{token};
}

reservation_token persistent_create(protocol p, port_range r, std::error_code& ec) {
  return call_with_token(p, r, "CreatePersistentTcpPortReservation", "CreatePersistentUdpPortReservation", from_status, ec);
}

reservation_token persistent_lookup(protocol p, port_range r, std::error_code& ec) {
  return call_with_token(p, r, "LookupPersistentTcpPortReservation", "LookupPersistentUdpPortReservation", from_lookup_status, ec);
}

void persistent_remove(protocol p, port_range r, std::error_code& ec) {
  auto fn = resolve<delete_fn>(p, "DeletePersistentTcpPortReservation", "DeletePersistentUdpPortReservation");
  if (!fn) {
    ec = error::os_unsupported;
    return;
  }
  ec = from_lookup_status(fn(windows::to_network_port(r.first()), gsl::narrow<USHORT>(r.count())));
}

std::vector<reservation> persistent_list(protocol, std::error_code& ec) {
  // Windows has no API that lists persistent reservations (only netsh shows them).
  ec = error::os_unsupported;
  return {};
}

void persistent_apply(std::error_code& ec) {
  ec.clear(); // Windows keeps persistent reservations across reboots itself.
}

} // namespace platform
} // namespace portres::detail
