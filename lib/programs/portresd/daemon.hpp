// portresd: the event loop. Single-threaded (epoll); each runtime grant
// belongs to one client connection and ends with it. The pieces it drives:
// connections (who may connect), grant_table (who holds what, where a block
// may go), policy (quotas, root's share), credentials (who a peer is),
// store_view (persistent blocks), kernel_view (the kernel list, written once
// per turn of the loop), daemon_state (root's registry, socket activation).
#ifndef PORTRES_PROGRAMS_PORTRESD_DAEMON_HPP
#define PORTRES_PROGRAMS_PORTRESD_DAEMON_HPP

#include "portresd/policy.hpp"

#include <string>

namespace portres::portresd {

struct options {
  std::string socket_name;
  std::string registry_dir; ///< root's per-user registry, whose live grants are respected
  policy rules;
};

/// Listens and serves until SIGTERM/SIGINT; returns the exit status.
int run(const options& opts);

} // namespace portres::portresd

#endif
