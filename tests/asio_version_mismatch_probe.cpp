// Stands for a user's file that includes another Asio release than the one
// portres was compiled with: the test build.asio_version_mismatch builds it and
// expects portres/detail/asio_version.hpp to stop the compilation.
#include <asio/version.hpp>

#ifndef PORTRES_ASIO_VERSION
#error "PORTRES_ASIO_VERSION is not defined: the build did not pass its Asio release on"
#endif
#undef PORTRES_ASIO_VERSION
#define PORTRES_ASIO_VERSION (ASIO_VERSION + 1)

#include "portres/portres.hpp"
