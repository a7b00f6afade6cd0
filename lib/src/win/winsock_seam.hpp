// The Winsock calls the native engine makes, behind replaceable function
// pointers so that tests can put a simulated provider in their place (Wine
// answers the reservation IOCTLs with "not supported"). Production code
// never changes them.
#ifndef PORTRES_SRC_WIN_WINSOCK_SEAM_HPP
#define PORTRES_SRC_WIN_WINSOCK_SEAM_HPP

#include <winsock2.h>

namespace portres::detail::win {

struct winsock_seam {
  using ioctl_fn = int(WSAAPI*)(SOCKET, DWORD, LPVOID, DWORD, LPVOID, DWORD, LPDWORD, LPWSAOVERLAPPED,
                                LPWSAOVERLAPPED_COMPLETION_ROUTINE);
  using bind_fn = int(WSAAPI*)(SOCKET, const sockaddr*, int);
  using disconnect_fn = BOOL(PASCAL*)(SOCKET, LPOVERLAPPED, DWORD, DWORD);
  using open_fn = SOCKET(WSAAPI*)(int, int, int, LPWSAPROTOCOL_INFOW, GROUP, DWORD);
  using resolve_fn = FARPROC (*)(const char* name);
  using setsockopt_fn = int(WSAAPI*)(SOCKET, int, int, const char*, int);

  ioctl_fn ioctl = ::WSAIoctl;
  bind_fn bind = ::bind;
  /// Creates the acquiring socket (tests: see its flags, refuse AF_INET6).
  open_fn open = ::WSASocketW;
  /// Sets IPV6_V6ONLY off on the dual-mode sockets (tests: refuse it).
  setsockopt_fn set_option = ::setsockopt;
  /// Finds an iphlpapi function (the persistent reservations) by name; null
  /// when the system lacks it. Tests put fakes here (Wine has none).
  resolve_fn resolve = nullptr; // null: GetProcAddress on iphlpapi.dll
  /// Null: the provider's DisconnectEx, found through ioctl.
  disconnect_fn disconnect = nullptr;
  /// Tests: reuse sockets even under Wine (whose DisconnectEx leaves them unusable).
  bool reuse_under_wine = false;
};

/// The calls in force. Replace only from tests, with no operation pending.
winsock_seam& seam() noexcept;

} // namespace portres::detail::win

#endif
