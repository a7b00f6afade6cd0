// The public headers compile in a user's translation unit where min and max
// are function-like macros: <windows.h> defines them under MSVC unless
// NOMINMAX is defined, and portres defines NOMINMAX only for its own build.
// Everything the headers take from the standard library, Asio, GSL and
// doctest is included first (those protect themselves, or would not compile
// under the macros at all); then portres' headers meet the macros.
#include <doctest/doctest.h>

#include <asio.hpp>
#include <gsl/gsl>

#if __has_include(<bits/stdc++.h>)
#include <bits/stdc++.h> // libstdc++ is not written for these macros (MSVC's library is)
#endif

// As <windows.h> defines them (MinGW's only for C; the build's NOMINMAX keeps
// MSVC's away from the project's own TUs, so they are written out here).
#ifndef min
#define min(a, b) (((a) < (b)) ? (a) : (b))
#endif
#ifndef max
#define max(a, b) (((a) > (b)) ? (a) : (b))
#endif

#include "portres/portres.hpp"
#ifdef _WIN32
#include "portres/windows.hpp"
#endif

#undef min
#undef max

TEST_CASE("public headers compile where <windows.h> defined min and max as macros") {
  CHECK(portres::port_range(5000, 0).validate() == portres::condition::invalid_argument);
}
