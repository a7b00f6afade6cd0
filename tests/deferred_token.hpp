// The `deferred` completion token under the name each Asio gives it: Asio 1.24
// moved it from asio::experimental (where Debian's 1.22 has it) into asio, and
// later releases removed the experimental header.
#pragma once

#if __has_include(<asio/deferred.hpp>)
#include <asio/deferred.hpp>
namespace portres_test {
using asio::deferred;
} // namespace portres_test
#else
#include <asio/experimental/deferred.hpp>
namespace portres_test {
using asio::experimental::deferred;
} // namespace portres_test
#endif
