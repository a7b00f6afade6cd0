#include "portres/error.hpp"

#include "support.hpp"

#include <asio/error.hpp>

#include <cerrno>
#include <set>
#include <string>

#if defined(_WIN32)
#include <winsock2.h>
#include <windows.h>
#endif

using namespace portres;

namespace {
std::error_code sys(int value) { return {value, std::system_category()}; }
} // namespace

TEST_CASE("every portres error has a distinct message and category portres") {
  std::set<std::string> messages;
  for (int v = static_cast<int>(error::zero_count); v <= static_cast<int>(error::reservation_released); ++v) {
    const std::error_code ec = static_cast<error>(v);
    CHECK(std::string(ec.category().name()) == "portres");
    CHECK(ec.message().find("unknown") == std::string::npos);
    messages.insert(ec.message());
  }
  CHECK(messages.size() == static_cast<std::size_t>(error::reservation_released));
}

TEST_CASE("portres errors map to conditions") {
  CHECK(std::error_code(error::zero_count) == condition::invalid_argument);
  CHECK(std::error_code(error::block_exhausted) == condition::exhausted);
  CHECK(std::error_code(error::port_in_use) == condition::in_use);
  CHECK(std::error_code(error::privilege_required) == condition::access_denied);
  CHECK(std::error_code(error::backend_unavailable) == condition::not_supported);
  CHECK(std::error_code(error::pool_closed) == condition::aborted);
  CHECK(std::error_code(error::reservation_released) == condition::aborted);
  CHECK(std::error_code(error::zero_count) != condition::exhausted);
}

TEST_CASE("detailed errors name the port or block") {
  const auto in_use = port_in_use_error(50003);
  CHECK(in_use == condition::in_use);
  CHECK(in_use.message().find("50003") != std::string::npos);
  const auto exhausted = block_exhausted_error(50000, 20);
  CHECK(exhausted == condition::exhausted);
  CHECK(exhausted.message().find("50000-50019") != std::string::npos);
  const auto high = block_exhausted_error(65000, 536);
  CHECK(high.message().find("65000-65535") != std::string::npos);
}

TEST_CASE("a destination error names the block and the peer, and is an error from the first one on") {
  const auto first = destination_exhausted_error(40000, 200, "[::1]:8443");
  CHECK(first); // never the value 0, which would read as success
  CHECK(first == condition::exhausted);
  CHECK(first.message().find("40000-40199") != std::string::npos);
  CHECK(first.message().find("[::1]:8443") != std::string::npos);
  const auto other = destination_exhausted_error(40000, 200, "127.0.0.1:9001");
  CHECK(other != first);
  CHECK(other.message().find("127.0.0.1:9001") != std::string::npos);
  CHECK(destination_exhausted_error(40000, 200, "[::1]:8443") == first); // kept once
}

TEST_CASE("errno values in the generic category map on every OS") {
  CHECK(std::make_error_code(std::errc::operation_not_supported) == condition::not_supported);
  CHECK(std::make_error_code(std::errc::permission_denied) == condition::access_denied);
  CHECK(std::make_error_code(std::errc::operation_not_permitted) == condition::access_denied);
  CHECK(std::make_error_code(std::errc::address_in_use) == condition::in_use);
  CHECK(std::make_error_code(std::errc::operation_canceled) == condition::aborted);
  CHECK(std::make_error_code(std::errc::invalid_argument) == condition::invalid_argument);
  CHECK(std::make_error_code(std::errc::no_buffer_space) == condition::exhausted);
  CHECK(std::make_error_code(std::errc::timed_out) != condition::aborted);
}

#if defined(_WIN32)
TEST_CASE("Windows system codes map to conditions") {
  CHECK(sys(WSAEOPNOTSUPP) == condition::not_supported);
  CHECK(sys(ERROR_NOT_SUPPORTED) == condition::not_supported);
  CHECK(sys(ERROR_PROC_NOT_FOUND) == condition::not_supported);
  CHECK(sys(WSAEACCES) == condition::access_denied);
  CHECK(sys(ERROR_ACCESS_DENIED) == condition::access_denied);
  CHECK(sys(WSAEADDRINUSE) == condition::in_use);
  CHECK(sys(ERROR_SHARING_VIOLATION) == condition::in_use);
  CHECK(sys(WSA_OPERATION_ABORTED) == condition::aborted);
  CHECK(sys(995) == condition::aborted);
  CHECK(sys(676) == condition::aborted); // Wine's code for a close under a pending I/O
  CHECK(sys(WSAEINTR) == condition::aborted);
  CHECK(sys(WSAEINVAL) == condition::invalid_argument);
  CHECK(sys(ERROR_INVALID_PARAMETER) == condition::invalid_argument);
  CHECK(sys(WSAENOBUFS) == condition::exhausted);
  // bind: WSAEADDRNOTAVAIL is a local address this machine lacks, not a full block.
  CHECK(sys(WSAEADDRNOTAVAIL) == condition::invalid_argument);
  CHECK(sys(WSAEADDRNOTAVAIL) != condition::exhausted);
  // Completion-port codes (RtlNtStatusToDosError of tcpip's NTSTATUS).
  CHECK(sys(52) == condition::in_use);           // ERROR_DUP_NAME: STATUS_ADDRESS_ALREADY_EXISTS
  CHECK(sys(68) == condition::exhausted);        // ERROR_TOO_MANY_NAMES: STATUS_TOO_MANY_ADDRESSES
  CHECK(sys(1) == condition::not_supported);     // ERROR_INVALID_FUNCTION: STATUS_INVALID_DEVICE_REQUEST
  CHECK(sys(1214) == condition::invalid_argument); // ERROR_INVALID_NETNAME: STATUS_INVALID_ADDRESS_COMPONENT
  CHECK(sys(1168) == condition::invalid_argument); // ERROR_NOT_FOUND
  CHECK(sys(WSAECONNREFUSED) != condition::in_use);
  // Asio's own category for Windows codes maps the same way.
  CHECK(std::error_code(995, asio::error::get_system_category()) == condition::aborted);
  CHECK(std::error_code(50, asio::error::get_system_category()) == condition::not_supported);
}
#else
TEST_CASE("Linux errno codes in the system category map to conditions") {
  CHECK(sys(EOPNOTSUPP) == condition::not_supported);
  CHECK(sys(ENOSYS) == condition::not_supported);
  CHECK(sys(EACCES) == condition::access_denied);
  CHECK(sys(EPERM) == condition::access_denied);
  CHECK(sys(EADDRINUSE) == condition::in_use);
  CHECK(sys(ECANCELED) == condition::aborted);
  CHECK(sys(EINVAL) == condition::invalid_argument);
  CHECK(sys(EADDRNOTAVAIL) == condition::exhausted);
  CHECK(sys(ENOBUFS) == condition::exhausted);
  CHECK(sys(ECONNREFUSED) != condition::in_use);
  // Windows values must not leak into the Linux mapping (5 is EIO here).
  CHECK(sys(5) != condition::access_denied);
}
#endif
