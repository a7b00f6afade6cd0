// The private contract between the portable core and the per-OS code.
// Each function here has exactly one implementation per OS, in linux/ or win/;
// the build picks the folder.
#ifndef PORTRES_SRC_PLATFORM_HPP
#define PORTRES_SRC_PLATFORM_HPP

#include "portres/error.hpp"

#include <optional>

namespace portres::detail {

/// The portable meaning of a std::system_category() value of this OS, if any.
std::optional<condition> system_condition(int value) noexcept;

} // namespace portres::detail

#endif
