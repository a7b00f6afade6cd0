// On Windows std::system_category() carries Win32 and Winsock codes.
#include "platform.hpp"

#include <winsock2.h>
#include <windows.h>

namespace portres::detail {
namespace {
// Wine completes an I/O whose socket was closed with ERROR_HANDLES_CLOSED,
// where Windows reports ERROR_OPERATION_ABORTED; MinGW's headers lack it.
constexpr int error_handles_closed = 676;
} // namespace

// Winsock codes (immediate failures) and the Win32 codes completion ports
// carry: RtlNtStatusToDosError's translation of the driver's NTSTATUS (its
// table, e.g. ReactOS/Wine lib/rtl/error.c: STATUS_ADDRESS_ALREADY_EXISTS and
// STATUS_DUPLICATE_NAME -> ERROR_DUP_NAME, STATUS_TOO_MANY_ADDRESSES and
// STATUS_TOO_MANY_NAMES -> ERROR_TOO_MANY_NAMES, STATUS_INVALID_ADDRESS_COMPONENT
// -> ERROR_INVALID_NETNAME, STATUS_INVALID_DEVICE_REQUEST -> ERROR_INVALID_FUNCTION).
std::optional<condition> system_condition(int value) noexcept {
  switch (value) {
  case WSAEOPNOTSUPP:
  case ERROR_NOT_SUPPORTED:
  case ERROR_INVALID_FUNCTION:
  case ERROR_PROC_NOT_FOUND:
  case ERROR_CALL_NOT_IMPLEMENTED:
  case WSAEPROTONOSUPPORT:
  case WSAEAFNOSUPPORT: return condition::not_supported;
  case WSAEACCES:
  case ERROR_ACCESS_DENIED: return condition::access_denied;
  case WSAEADDRINUSE:
  case ERROR_DUP_NAME:
  case ERROR_SHARING_VIOLATION:
  case ERROR_ADDRESS_ALREADY_ASSOCIATED: return condition::in_use;
  case WSA_OPERATION_ABORTED: // == ERROR_OPERATION_ABORTED (995)
  case WSAEINTR:
  case ERROR_CANCELLED:
  case error_handles_closed:
  case ERROR_UNEXP_NET_ERR: // 59: cut short by the network (libuv reads it as ECONNABORTED)
  case WSAECONNABORTED: return condition::aborted;
  case WSAEINVAL:
  case ERROR_INVALID_PARAMETER:
  case ERROR_NOT_FOUND:           // persistent lookup/delete: no such block
  case WSAEADDRNOTAVAIL:          // bind: the local address is not this machine's
  case ERROR_INVALID_NETNAME:
  case ERROR_ADDRESS_NOT_ASSOCIATED:
  case ERROR_INVALID_ADDRESS: // 487: a buffer the provider could not use
  case WSAEFAULT:
  case ERROR_INVALID_HANDLE: // 6 (WSA_INVALID_HANDLE): not a socket, or closed
  case WSAENOTSOCK: return condition::invalid_argument;
  case WSAENOBUFS:
  case ERROR_NOT_ENOUGH_MEMORY: // 8 (WSA_NOT_ENOUGH_MEMORY)
  case ERROR_TOO_MANY_NAMES:
  case ERROR_NO_SYSTEM_RESOURCES: return condition::exhausted;
  default: return std::nullopt;
  }
}

} // namespace portres::detail
