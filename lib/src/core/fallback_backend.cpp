#include "backend.hpp"
#include "core/portable_backend.hpp"

namespace portres::detail {

backend& fallback_backend() {
  static portable_backend instance(backend_kind::fallback, make_local_registry());
  return instance;
}

} // namespace portres::detail
