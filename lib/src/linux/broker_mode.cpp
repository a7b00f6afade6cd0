#include "linux/broker_mode.hpp"

#include <cstdlib>

namespace portres::detail {

std::shared_ptr<registry> registry_mode::active() const {
  if (broker) return broker;
  if (files) return as_registry(files);
  return nullptr;
}

const registry_mode& linux_registry_mode() {
  static const registry_mode mode = [] {
    registry_mode m;
    const char* env = std::getenv("PORTRES_BROKER");
    const std::string asked = env ? env : "";
    std::string why_not;
    if (asked != "off") {
      const std::string name = asked.empty() ? broker_wire::default_socket_name : asked;
      m.broker = broker_registry::connect(name, why_not);
      if (m.broker) {
        m.description = "broker: portresd (@" + name +
                        ") grants every runtime reservation of this network namespace; blocks are machine-wide "
                        "(all users' processes) and kernel-enforced, and end with their holder's process";
        return m;
      }
      if (!asked.empty()) {
        // Asked for by name: no quiet switch to a weaker mode.
        m.unavailable = "PORTRES_BROKER=" + asked + ": " + why_not;
        m.description = "none: " + m.unavailable;
        return m;
      }
    } else {
      why_not = "PORTRES_BROKER=off";
    }
    std::string reason;
    m.files = linux_registry_instance(reason);
    if (!m.files) {
      m.unavailable = reason;
      m.description = "none: no broker (" + why_not + ") and " + reason;
      return m;
    }
    m.description = "per-user registry (no broker: " + why_not + "): runtime reservations exclude " +
                    linux_registry_scope() + "; start portresd for machine-wide reservations";
    return m;
  }();
  return mode;
}

} // namespace portres::detail
