// The Windows engine's way of issuing a reservation IOCTL: overlapped on
// Asio's completion port (or blocking, where the caller asked for a
// synchronous call), with the OS's raw answer recorded (os_trace.hpp) and
// translated to the Winsock code of the same failure.
#ifndef PORTRES_SRC_WIN_OVERLAPPED_IOCTL_HPP
#define PORTRES_SRC_WIN_OVERLAPPED_IOCTL_HPP

#include "os_trace.hpp"
#include "win/winsock_seam.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/windows/overlapped_ptr.hpp>

#include <atomic>
#include <cstddef>
#include <memory>
#include <optional>
#include <system_error>

#include <winsock2.h>
#include <windows.h>

namespace portres::detail::win {

/// The IOCTL's name for the trace ("SIO_ACQUIRE_PORT_RESERVATION", ...).
const char* ioctl_name(DWORD code) noexcept;

/// Translates a completion port's Win32 code (the driver's NTSTATUS through
/// RtlNtStatusToDosError) to the Winsock code the same failure gives when
/// the call fails at once, as Asio does for its own socket operations.
/// `ended_by_us`: the operation was cancelled through portres or its socket
/// closed, which decides what ERROR_NETNAME_DELETED and ERROR_INVALID_HANDLE mean.
std::error_code from_completion(std::error_code ec, bool ended_by_us);

/// Whether `s` is still an open socket (not closed under the operation).
bool socket_open(SOCKET s) noexcept;

/// The IOCTL without OVERLAPPED: blocks until done, even on a non-blocking socket.
std::error_code blocking_ioctl(SOCKET s, DWORD code, void* in, DWORD in_size, void* out, DWORD out_size,
                               DWORD& bytes);

/// Issues one IOCTL as overlapped I/O on Asio's completion port.
/// `finish(ec, bytes)` runs exactly once on the io_context: with the
/// completion, or with the immediate failure. Cancellation of a type in
/// `supported` cancels the I/O (CancelIoEx).
template <class Finish>
void start_ioctl(const asio::any_io_executor& ex, SOCKET s, DWORD code, void* in, DWORD in_size, void* out,
                 DWORD out_size, asio::cancellation_slot slot, asio::cancellation_type supported, Finish finish) {
  struct progress {
    std::atomic<bool> cancelled{false}; // through the cancellation slot
    std::uint64_t trace = 0;
    bool failed_at_once = false;
  };
  auto state = std::make_shared<progress>();
  asio::windows::overlapped_ptr op(
      ex, [finish = std::move(finish), state, s](std::error_code ec, std::size_t bytes) mutable {
        if (state->failed_at_once) {
          finish(ec, bytes); // a Winsock code already, recorded when the call returned
          return;
        }
        const auto result = from_completion(ec, ec && (state->cancelled || !socket_open(s)));
        os_trace::finish(state->trace, static_cast<std::uint32_t>(ec.value()), static_cast<std::uint32_t>(bytes), result);
        finish(result, bytes);
      });
  if (slot.is_connected()) {
    slot.assign([s, overlapped = op.get(), supported, state](asio::cancellation_type type) {
      if ((type & supported) == asio::cancellation_type::none) return;
      state->cancelled = true;
      ::CancelIoEx(reinterpret_cast<HANDLE>(s), overlapped);
    });
  }
  // Recorded before the call is issued: from issuing on, nothing may throw
  // (the I/O would be under way with its handler lost).
  state->trace = os_trace::begin({ioctl_name(code), static_cast<std::uint64_t>(s), true, 0, std::nullopt, 0, {}});
  DWORD bytes = 0;
  const int rc = seam().ioctl(s, code, in, in_size, out, out_size, &bytes, op.get(), nullptr);
  const int code_now = rc == 0 ? 0 : ::WSAGetLastError();
  os_trace::issued(state->trace, code_now, static_cast<std::uint32_t>(bytes));
  if (rc != 0 && code_now != WSA_IO_PENDING) {
    const std::error_code failed(code_now, std::system_category());
    state->failed_at_once = true;
    os_trace::finish(state->trace, std::nullopt, 0, failed);
    op.complete(failed, 0);
  } else {
    op.release(); // the completion packet arrives on the port, also after immediate success
  }
}

} // namespace portres::detail::win

#endif
