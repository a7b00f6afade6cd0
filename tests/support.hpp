// Shared test helpers: readable doctest output for error codes.
#ifndef PORTRES_TESTS_SUPPORT_HPP
#define PORTRES_TESTS_SUPPORT_HPP

#include <doctest/doctest.h>

#include <ostream>
#include <string>
#include <system_error>

namespace doctest {
template <>
struct StringMaker<std::error_code> {
  static String convert(const std::error_code& ec) {
    const std::string text =
        std::string(ec.category().name()) + ":" + std::to_string(ec.value()) + " (" + ec.message() + ")";
    return String(text.c_str());
  }
};
} // namespace doctest

#endif
