// Asio is header-only: a program whose own files include another Asio release
// than the one portres was compiled with holds two definitions of Asio's inline
// code and types (an io_context from one, the library's code from the other),
// and crashes. portres' CMake package and portres.pc carry the release it was
// compiled with as PORTRES_ASIO_VERSION; a file that includes another stops here.
#ifndef PORTRES_DETAIL_ASIO_VERSION_HPP
#define PORTRES_DETAIL_ASIO_VERSION_HPP

#include <asio/version.hpp>

#if defined(PORTRES_ASIO_VERSION) && PORTRES_ASIO_VERSION != ASIO_VERSION
#error "portres was compiled with another Asio release than the one this file includes (PORTRES_ASIO_VERSION is not ASIO_VERSION): build against the Asio portres was built with (CMake: PORTRES_ASIO_INCLUDE_DIR)"
#endif

#endif
