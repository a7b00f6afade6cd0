// portresd: the machine-wide portres reservation broker (one per network
// namespace). See docs/security.md, "Broker mode".
//   portresd --foreground [--socket NAME] [--policy FILE] [--registry-dir DIR]
// With systemd socket activation (portresd.socket) the listening socket is
// inherited (LISTEN_FDS) and --socket only names it in messages. What it
// keeps per network namespace lives in the namespace folder /run/portresd,
// where its clients and root's registries meet it: not an option for that
// reason.
#include "linux/broker_protocol.hpp"
#include "portresd/daemon.hpp"
#include "portresd/daemon_state.hpp"

#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include <unistd.h>

int main(int argc, char** argv) {
  using namespace portres;
  // A parent that ignores SIGTERM or SIGINT (nohup, some service runners)
  // passes that on through exec; until the server takes them over, they
  // must still stop a daemon that is starting up.
  std::signal(SIGTERM, SIG_DFL);
  std::signal(SIGINT, SIG_DFL);
  portresd::options opts;
  opts.socket_name = detail::broker_wire::default_socket_name;
  opts.registry_dir = portresd::default_registry_dir();
  bool foreground = false;
  std::string policy_path;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--foreground") {
      foreground = true;
    } else if (arg == "--socket" && has_value) {
      opts.socket_name = argv[++i];
    } else if (arg == "--registry-dir" && has_value) {
      opts.registry_dir = argv[++i];
    } else if (arg == "--policy" && has_value) {
      policy_path = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: portresd --foreground [--socket NAME] [--policy FILE] [--registry-dir DIR]\n"
                   "portresd: unknown or incomplete argument '%s'\n",
                   arg.c_str());
      return 2;
    }
  }
  if (!foreground) {
    std::fprintf(stderr, "portresd: runs in the foreground only (systemd keeps it running): pass --foreground\n");
    return 2;
  }
  if (::geteuid() != 0) {
    std::fprintf(stderr, "portresd: must run as root (it writes ip_local_reserved_ports and the persistent store)\n");
    return 1;
  }
  if (!policy_path.empty()) {
    std::ifstream in(policy_path);
    if (!in) {
      std::fprintf(stderr, "portresd: cannot read policy file %s: %s\n", policy_path.c_str(), std::strerror(errno));
      return 1;
    }
    std::stringstream text;
    text << in.rdbuf();
    std::string error;
    const auto parsed = portresd::parse_policy(text.str(), error);
    if (!parsed) {
      std::fprintf(stderr, "portresd: %s: %s\n", policy_path.c_str(), error.c_str());
      return 1;
    }
    opts.rules = *parsed;
  }
  return portresd::run(opts);
}
