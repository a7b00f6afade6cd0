// What the OS answered, before portres translated it: the Windows engine
// records each reservation IOCTL and bind it makes (the raw Winsock code of
// the call, the completion port's raw Win32 code, the bytes returned) so that
// `portres selftest` can report the OS's own answers beside portres' error.
// Off until enabled: recording costs a lock per call.
#ifndef PORTRES_SRC_OS_TRACE_HPP
#define PORTRES_SRC_OS_TRACE_HPP

#include <cstdint>
#include <optional>
#include <system_error>
#include <vector>

namespace portres::detail::os_trace {

/// One OS call.
struct call {
  const char* what = "";      ///< "SIO_ACQUIRE_PORT_RESERVATION", "bind", ...
  std::uint64_t socket = 0;   ///< the socket handle it was made on
  bool overlapped = false;    ///< issued with an OVERLAPPED (may complete through the port)
  int immediate = 0;          ///< the call's own result: 0, else its Winsock code (997: pending)
  std::optional<std::uint32_t> completion; ///< the completion port's raw Win32 code, if one came
  std::uint32_t bytes = 0;    ///< bytes returned, at once or with the completion
  std::error_code result;     ///< what portres made of it (after translation)
};

/// Turns recording on or off (off by default).
void enable(bool on) noexcept;
bool enabled() noexcept;

/// Records the start of a call; returns its id (0 when recording is off, or
/// when the record could not be stored: tracing never throws into the engine).
std::uint64_t begin(const call& c) noexcept;
/// Fills in the call's own answer, for a record begun before the call was
/// issued (so that nothing after issuing it can throw).
void issued(std::uint64_t id, int immediate, std::uint32_t bytes) noexcept;
/// Completes the record `id` (no-op for id 0 or a record already dropped).
void finish(std::uint64_t id, std::optional<std::uint32_t> completion, std::uint32_t bytes, std::error_code result) noexcept;

/// The id the next record will get: since(mark()) later gives the calls made meanwhile.
std::uint64_t mark();
/// The records with ids >= `from`, oldest first (the last 512 calls at most).
std::vector<call> since(std::uint64_t from);

} // namespace portres::detail::os_trace

#endif
