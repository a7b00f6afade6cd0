// Backend-neutral conformance: the same test source runs against every
// backend this build can exercise.
#ifndef PORTRES_TESTS_CONFORMANCE_HPP
#define PORTRES_TESTS_CONFORMANCE_HPP

#include "portres/backend.hpp"

#include <asio/io_context.hpp>

#include <memory>

#include <vector>

namespace portres_test {

/// Linux: native (cross-process registry) and fallback. Windows: fallback,
/// and native over the simulated provider (Wine has no reservation IOCTLs).
std::vector<portres::backend_kind> conformance_backends();

/// Selects a backend (installing the simulated provider for native on
/// Windows) for the life of the scope.
class backend_scope {
public:
  backend_scope(portres::backend_kind kind, asio::io_context& io);
  ~backend_scope();
  backend_scope(const backend_scope&) = delete;
  backend_scope& operator=(const backend_scope&) = delete;

private:
  std::shared_ptr<void> provider_; // the simulated provider, where one is installed
};

/// Whether the backend in force picks ports itself (portable) or lets the OS pick.
bool portable_port_choice();

} // namespace portres_test

#define PORTRES_FOR_EACH_BACKEND(kind)                                                                   \
  for (const auto kind : portres_test::conformance_backends())                                            \
    DOCTEST_SUBCASE(portres::to_string(kind))
#endif
