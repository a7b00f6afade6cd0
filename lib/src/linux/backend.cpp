// The Linux backend: the portable core over the cross-process registry, the
// persistent store, and what this machine supports.
#include "backend.hpp"
#include "core/portable_backend.hpp"
#include "linux/broker_mode.hpp"
#include "linux/registry.hpp"
#include "platform.hpp"
#include "portres/linux_error.hpp"

#include <unistd.h>

namespace portres::detail {

backend* native_backend(std::string& reason) {
  const auto& mode = linux_registry_mode();
  reason = mode.unavailable;
  if (!mode.active()) return nullptr;
  static portable_backend instance(backend_kind::native, mode.active());
  return &instance;
}

capability_report os_capabilities() {
  capability_report report;
  report.platform = platform::name();
  std::error_code store_ec;
  linux_store::load(store_ec);
  if (store_ec) {
    report.state_damage = "persistent store in " + linux_store::directory() + ": " + store_ec.message() +
                          " (runtime reservations unaffected; persistent changes refused until repaired)";
  }
  const auto& mode = linux_registry_mode();
  report.coordination = mode.description;
  report.machine_wide = mode.broker != nullptr;
  if (mode.broker) {
    // The broker is root: it writes the kernel list for every client.
    report.native_runtime = true;
    report.kernel_enforcement = true;
    report.persistent = !mode.broker->persistent_access();
    if (!report.persistent) {
      report.persistent_reason = "creating persistent reservations needs root or portresd's persistent-group";
    }
    return report;
  }
  if (mode.refusing) {
    // The broker is required, or there is no registry folder: the native
    // backend stays selected (so nothing falls back to in-process
    // coordination, which excludes no other process) and refuses every grant.
    report.native_runtime = true;
    report.kernel_enforcement_reason = report.persistent_reason = mode.unavailable;
    return report;
  }
  std::string reason;
  report.native_runtime = linux_registry_instance(reason) != nullptr;
  report.native_runtime_reason = reason;
  report.kernel_enforcement = kernel_enforcement_available(reason);
  if (!report.kernel_enforcement) report.kernel_enforcement_reason = reason;
  report.persistent = ::geteuid() == 0 && report.native_runtime;
  if (!report.native_runtime) {
    report.persistent_reason = "the registry is unavailable: " + report.native_runtime_reason;
  } else if (::geteuid() != 0) {
    report.persistent_reason = "creating persistent reservations needs root (lookup and list work)";
  }
  return report;
}

namespace platform {
namespace {

std::shared_ptr<linux_registry> registry_or(std::error_code& ec) {
  std::string reason;
  auto shared = linux_registry_instance(reason);
  if (!shared) ec = linux_error::registry_unavailable;
  return shared;
}

broker_registry* broker() { return linux_registry_mode().broker.get(); }

bool privileged(std::error_code& ec) {
  if (::geteuid() == 0) return true;
  ec = error::privilege_required;
  return false;
}

} // namespace

reservation_token persistent_create(protocol p, port_range r, std::error_code& ec) {
  if (auto b = broker()) return b->persistent_create(p, r, ec); // the daemon checks the caller's rights
  if (!privileged(ec)) return {};
  auto shared = registry_or(ec);
  return shared ? linux_persistent_create(*shared, {p, r}, ec) : reservation_token{};
}

reservation_token persistent_lookup(protocol p, port_range r, std::error_code& ec) {
  const auto stored = linux_store::load(ec);
  if (ec) return {};
  for (const auto& e : stored) {
    if (e.proto == p && e.range == r) return linux_store::token_of(e);
  }
  ec = error::unknown_token;
  return {};
}

void persistent_remove(protocol p, port_range r, std::error_code& ec) {
  if (auto b = broker()) return b->persistent_remove(p, r, ec);
  if (!privileged(ec)) return;
  if (auto shared = registry_or(ec)) linux_persistent_remove(*shared, {p, r}, ec);
}

std::vector<reservation> persistent_list(protocol p, std::error_code& ec) {
  std::vector<reservation> out;
  for (const auto& e : linux_store::load(ec)) {
    if (e.proto == p) out.push_back({e.range, linux_store::token_of(e)});
  }
  return out;
}

void persistent_apply(std::error_code& ec) {
  if (auto b = broker()) return b->persistent_apply(ec);
  if (!privileged(ec)) return;
  if (auto shared = registry_or(ec)) linux_persistent_apply(*shared, ec);
}

} // namespace platform
} // namespace portres::detail
