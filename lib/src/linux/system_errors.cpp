// On Linux std::system_category() carries errno values: the portable errno table applies.
#include "platform.hpp"

namespace portres::detail {

std::optional<condition> system_condition(int value) noexcept { return errno_condition(value); }

} // namespace portres::detail
