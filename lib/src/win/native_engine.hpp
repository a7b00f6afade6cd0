// The Windows engine: SIO_ACQUIRE/ASSOCIATE/RELEASE_PORT_RESERVATION as
// overlapped WSAIoctl calls on Asio's completion port.
#ifndef PORTRES_SRC_WIN_NATIVE_ENGINE_HPP
#define PORTRES_SRC_WIN_NATIVE_ENGINE_HPP

#include "backend.hpp"

#include <cstddef>

namespace portres::detail::win {

backend& native_engine();

/// How many runtime reservations of this process the engine tracks as live
/// (tests: the table must shrink when reservations die).
std::size_t live_runtime_tokens();

} // namespace portres::detail::win

#endif
