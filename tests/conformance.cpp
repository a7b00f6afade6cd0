#include "conformance.hpp"

#if defined(_WIN32)
#include "win/simulated_provider.hpp"
#endif

namespace portres_test {

std::vector<portres::backend_kind> conformance_backends() {
  return {portres::backend_kind::native, portres::backend_kind::fallback};
}

backend_scope::backend_scope(portres::backend_kind kind, [[maybe_unused]] asio::io_context& io) {
#if defined(_WIN32)
  if (kind == portres::backend_kind::native) provider_ = std::make_shared<simulated_provider>(io);
#endif
  portres::select_backend(kind);
}

backend_scope::~backend_scope() { portres::select_backend(portres::backend_kind::automatic); }

bool portable_port_choice() {
#if defined(_WIN32)
  return portres::active_backend() != portres::backend_kind::native;
#else
  return true;
#endif
}

} // namespace portres_test
