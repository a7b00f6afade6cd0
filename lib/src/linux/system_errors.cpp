// On Linux std::system_category() carries errno values.
#include "platform.hpp"

#include <cerrno>

namespace portres::detail {

std::optional<condition> system_condition(int value) noexcept {
  switch (value) {
  case EOPNOTSUPP: // == ENOTSUP on Linux
  case ENOSYS:
  case EPROTONOSUPPORT:
  case EAFNOSUPPORT:
  case ENOPROTOOPT: return condition::not_supported;
  case EACCES:
  case EPERM: return condition::access_denied;
  case EADDRINUSE: return condition::in_use;
  case ECANCELED: return condition::aborted;
  case EINVAL: return condition::invalid_argument;
  case EADDRNOTAVAIL:
  case ENOBUFS: return condition::exhausted;
  default: return std::nullopt;
  }
}

} // namespace portres::detail
