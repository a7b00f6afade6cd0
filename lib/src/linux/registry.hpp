// The Linux cross-process registry: every portres process of the machine
// coordinates through one folder. Each live runtime reservation is a file
// its owner holds an flock on (a crashed owner's file is found abandoned and
// removed); blocks are chosen under the folder's lock; blocks inside the
// ephemeral range are written to net.ipv4.ip_local_reserved_ports when
// privileged, recomputed from all live and persistent blocks at each change.
#ifndef PORTRES_SRC_LINUX_REGISTRY_HPP
#define PORTRES_SRC_LINUX_REGISTRY_HPP

#include "core/registry.hpp"
#include "linux/persistent_store.hpp"
#include "portres/usage.hpp"

#include <string>
#include <vector>

namespace portres::detail {

class linux_registry;

/// The process' registry, or null with `reason` when the folder is unusable.
std::shared_ptr<linux_registry> linux_registry_instance(std::string& reason);
/// The same object, as the portable backend sees it.
std::shared_ptr<registry> as_registry(std::shared_ptr<linux_registry> r);

/// Persistent-store operations, under the registry lock.
reservation_token linux_persistent_create(linux_registry& r, linux_store::entry e, std::error_code& ec);
void linux_persistent_remove(linux_registry& r, linux_store::entry e, std::error_code& ec);
void linux_persistent_apply(linux_registry& r, std::error_code& ec);

/// Live runtime reservations of every process.
std::vector<runtime_entry> linux_runtime_entries(linux_registry& r, std::error_code& ec);

/// Whose processes this registry excludes, in words (capabilities, `show`);
/// names the failure when the registry cannot be used.
std::string linux_registry_scope();

/// Whether this process may write ip_local_reserved_ports; `reason` when not.
bool kernel_enforcement_available(std::string& reason);

} // namespace portres::detail

#endif
