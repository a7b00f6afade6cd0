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

std::optional<condition> system_condition(int value) noexcept {
  switch (value) {
  case WSAEOPNOTSUPP:
  case ERROR_NOT_SUPPORTED:
  case ERROR_PROC_NOT_FOUND:
  case ERROR_CALL_NOT_IMPLEMENTED:
  case WSAEPROTONOSUPPORT:
  case WSAEAFNOSUPPORT: return condition::not_supported;
  case WSAEACCES:
  case ERROR_ACCESS_DENIED: return condition::access_denied;
  case WSAEADDRINUSE:
  case ERROR_SHARING_VIOLATION:
  case ERROR_ADDRESS_ALREADY_ASSOCIATED: return condition::in_use;
  case WSA_OPERATION_ABORTED: // == ERROR_OPERATION_ABORTED (995)
  case WSAEINTR:
  case ERROR_CANCELLED:
  case error_handles_closed: return condition::aborted;
  case WSAEINVAL:
  case ERROR_INVALID_PARAMETER: return condition::invalid_argument;
  case WSAENOBUFS:
  case WSAEADDRNOTAVAIL:
  case ERROR_NO_SYSTEM_RESOURCES: return condition::exhausted;
  default: return std::nullopt;
  }
}

} // namespace portres::detail
