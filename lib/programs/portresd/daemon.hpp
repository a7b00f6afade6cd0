// portresd's event loop and reservation table (single-threaded, epoll).
// Each runtime grant belongs to one client connection and ends with it.
#ifndef PORTRES_PROGRAMS_PORTRESD_DAEMON_HPP
#define PORTRES_PROGRAMS_PORTRESD_DAEMON_HPP

#include "portresd/daemon_state.hpp"
#include "portresd/policy.hpp"

#include <string>

namespace portres::portresd {

struct options {
  std::string socket_name;
  std::string state_dir;    ///< root-only folder for what survives a restart (daemon_state.hpp)
  std::string registry_dir; ///< root's per-user registry, whose live grants are respected
  policy rules;
  bool verbose = false;
};

/// Listens and serves until SIGTERM/SIGINT; returns the exit status.
int run(const options& opts);

} // namespace portres::portresd

#endif
