#include "win/overlapped_ioctl.hpp"

#include <asio/error.hpp>

#include <mstcpip.h>

namespace portres::detail::win {
namespace {
// Win32 codes MinGW's headers lack.
constexpr int error_handles_closed = 676; // Wine: an I/O whose socket was closed
} // namespace

const char* ioctl_name(DWORD code) noexcept {
  switch (code) {
  case SIO_ACQUIRE_PORT_RESERVATION: return "SIO_ACQUIRE_PORT_RESERVATION";
  case SIO_ASSOCIATE_PORT_RESERVATION: return "SIO_ASSOCIATE_PORT_RESERVATION";
  case SIO_RELEASE_PORT_RESERVATION: return "SIO_RELEASE_PORT_RESERVATION";
  default: return "WSAIoctl";
  }
}

// The completion port carries Win32 codes: the driver's NTSTATUS through
// RtlNtStatusToDosError (its table, e.g. ReactOS/Wine lib/rtl/error.c:
// STATUS_ADDRESS_ALREADY_EXISTS -> ERROR_DUP_NAME, STATUS_TOO_MANY_ADDRESSES
// -> ERROR_TOO_MANY_NAMES, STATUS_INVALID_ADDRESS_COMPONENT ->
// ERROR_INVALID_NETNAME, STATUS_INVALID_DEVICE_REQUEST -> ERROR_INVALID_FUNCTION,
// STATUS_NO_MEMORY -> ERROR_NOT_ENOUGH_MEMORY, STATUS_UNEXPECTED_NETWORK_ERROR
// -> ERROR_UNEXP_NET_ERR). The raw code stays in the trace (os_trace.hpp).
std::error_code from_completion(std::error_code ec, bool ended_by_us) {
  // Asio reports completion codes in its own "asio.system" category.
  if (!ec || (ec.category() != std::system_category() && ec.category() != asio::error::get_system_category())) {
    return ec;
  }
  const auto wsa = [](int code) { return std::error_code(code, std::system_category()); };
  switch (ec.value()) {
  case ERROR_DUP_NAME:
  case ERROR_SHARING_VIOLATION: return wsa(WSAEADDRINUSE);
  case ERROR_TOO_MANY_NAMES:
  case ERROR_NO_SYSTEM_RESOURCES:
  case ERROR_NOT_ENOUGH_MEMORY: return wsa(WSAENOBUFS);
  case ERROR_INVALID_NETNAME: return wsa(WSAEADDRNOTAVAIL);
  case ERROR_INVALID_FUNCTION:
  case ERROR_NOT_SUPPORTED: return wsa(WSAEOPNOTSUPP);
  case ERROR_ACCESS_DENIED: return wsa(WSAEACCES);
  case ERROR_INVALID_PARAMETER: return wsa(WSAEINVAL);
  case ERROR_INVALID_ADDRESS: return wsa(WSAEFAULT); // a buffer the provider could not use
  case error_handles_closed:
  case ERROR_CANCELLED: return wsa(WSA_OPERATION_ABORTED);
  // As Asio decides for its own operations: the connection (here the
  // socket) went away under the I/O, which is an abort when we ended it.
  case ERROR_NETNAME_DELETED: return wsa(ended_by_us ? WSA_OPERATION_ABORTED : WSAECONNRESET);
  case ERROR_INVALID_HANDLE: return wsa(ended_by_us ? WSA_OPERATION_ABORTED : WSAENOTSOCK);
  case ERROR_UNEXP_NET_ERR: return wsa(WSAECONNABORTED); // as libuv reads it: cut short
  default: return wsa(ec.value());
  }
}

bool socket_open(SOCKET s) noexcept {
  int type = 0;
  int size = sizeof type;
  return ::getsockopt(s, SOL_SOCKET, SO_TYPE, reinterpret_cast<char*>(&type), &size) == 0;
}

std::error_code blocking_ioctl(SOCKET s, DWORD code, void* in, DWORD in_size, void* out, DWORD out_size,
                               DWORD& bytes) {
  bytes = 0;
  const int rc = seam().ioctl(s, code, in, in_size, out, out_size, &bytes, nullptr, nullptr);
  const int code_now = rc == 0 ? 0 : ::WSAGetLastError();
  const std::error_code result = rc == 0 ? std::error_code() : std::error_code(code_now, std::system_category());
  const auto id = os_trace::begin(
      {ioctl_name(code), static_cast<std::uint64_t>(s), false, code_now, std::nullopt, static_cast<std::uint32_t>(bytes), {}});
  os_trace::finish(id, std::nullopt, static_cast<std::uint32_t>(bytes), result);
  return result;
}

} // namespace portres::detail::win
