#include "linux/broker_mode.hpp"

#include "portres/error.hpp"
#include "portres/linux_error.hpp"

#include <cstdlib>

namespace portres::detail {
namespace {

// No mode can serve (PORTRES_BROKER=required without a genuine broker, or
// no usable registry folder): every grant fails with a clear error instead
// of a quiet switch to a weaker mode (in-process coordination would let two
// processes take the same block).
class refusing_registry final : public registry {
public:
  explicit refusing_registry(linux_error why) : why_(why) {}
  std::unique_ptr<lease> grant(protocol, port_range, reservation_token, blocking, port_range&,
                               std::error_code& ec) override {
    ec = why_;
    return nullptr;
  }
  void release(lease&, blocking, std::error_code& ec) override { ec = error::already_released; }
  std::error_code classify_unknown(reservation_token, blocking) override { return why_; }
  std::optional<port_range> persistent_block(protocol, reservation_token, blocking, std::error_code& ec) override {
    ec = why_;
    return std::nullopt;
  }
  std::error_code persistent_access() const override { return why_; }

private:
  linux_error why_;
};

} // namespace

std::shared_ptr<registry> registry_mode::active() const {
  if (broker) return broker;
  if (files) return as_registry(files);
  return refusing;
}

registry_mode choose_registry_mode(const std::string& asked, const std::string& default_name) {
  registry_mode m;
  std::string why_not;
  if (asked != "off") {
    const bool named = !asked.empty() && asked != "required";
    const std::string name = named ? asked : default_name;
    m.broker = broker_registry::connect(name, why_not);
    if (m.broker) {
      m.description = "broker: portresd (@" + name +
                      ") grants every runtime reservation of this network namespace; blocks are machine-wide "
                      "(all users' processes) and kernel-enforced, and end with their holder's process";
      return m;
    }
    if (!asked.empty()) {
      // Required, or asked for by name: no quiet switch to a weaker mode.
      m.unavailable = "PORTRES_BROKER=" + asked + ": " + why_not;
      m.description = "none: " + m.unavailable + "; every acquire fails with linux_error::broker_required";
      m.refusing = std::make_shared<refusing_registry>(linux_error::broker_required);
      return m;
    }
  } else {
    why_not = "PORTRES_BROKER=off";
  }
  std::string reason;
  m.files = linux_registry_instance(reason);
  if (!m.files) {
    m.unavailable = reason;
    m.description = "none: no broker (" + why_not + ") and " + reason +
                    "; every acquire fails with linux_error::registry_unavailable";
    m.refusing = std::make_shared<refusing_registry>(linux_error::registry_unavailable);
    return m;
  }
  m.description = "per-user registry (no broker: " + why_not + "; using per-user registry): runtime reservations exclude " +
                  linux_registry_scope() +
                  "; start portresd for machine-wide reservations (PORTRES_BROKER=required refuses to fall back)";
  return m;
}

const registry_mode& linux_registry_mode() {
  static const registry_mode mode = [] {
    const char* env = std::getenv("PORTRES_BROKER");
    return choose_registry_mode(env ? env : "", broker_wire::default_socket_name);
  }();
  return mode;
}

} // namespace portres::detail
