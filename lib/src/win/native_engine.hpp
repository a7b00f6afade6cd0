// The Windows engine: SIO_ACQUIRE/ASSOCIATE/RELEASE_PORT_RESERVATION as
// overlapped WSAIoctl calls on Asio's completion port.
#ifndef PORTRES_SRC_WIN_NATIVE_ENGINE_HPP
#define PORTRES_SRC_WIN_NATIVE_ENGINE_HPP

#include "backend.hpp"

namespace portres::detail::win {

backend& native_engine();

} // namespace portres::detail::win

#endif
