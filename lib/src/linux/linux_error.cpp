#include "portres/linux_error.hpp"

#include "portres/error.hpp"

#include <optional>
#include <string>

namespace portres {
namespace {

std::string message_of(linux_error e) {
  switch (e) {
  case linux_error::reservation_lost:
    return "the reservation was lost: its portresd connection closed (the daemon stopped or restarted), so the "
           "block may be granted to others; acquire a new one";
  case linux_error::broker_required:
    return "portresd is required (PORTRES_BROKER=required or a broker name) but no broker owned by root answers";
  case linux_error::broker_started:
    return "portresd serves this network namespace, but this process uses the per-user registry (it chose it before "
           "the daemon started, or PORTRES_BROKER=off): the registry cannot see the daemon's blocks, so it grants "
           "nothing; restart the process to use portresd";
  case linux_error::broker_busy:
    return "portresd did not take the connection in time (its backlog is full: the daemon is overloaded); try again";
  case linux_error::port_quota:
    return "portresd refused: this user would hold more ports than its policy allows (max-ports; see "
           "docs/security.md)";
  case linux_error::block_quota:
    return "portresd refused: this user would hold more blocks than its policy allows (max-blocks; see "
           "docs/security.md)";
  case linux_error::connection_quota:
    return "portresd refused the connection: this user (or all non-root users together) hold the policy's "
           "connection limit (max-connections; see docs/security.md)";
  case linux_error::reserved_for_root:
    return "portresd refused: the block lies in the share of the placement range kept for root (root-reserve; see "
           "docs/security.md)";
  case linux_error::enforcement_failed:
    return "the block could not be kept out of automatic allocation (writing ip_local_reserved_ports, or recording "
           "which entries portres added, failed), so it was not granted; the daemon's log or the registry folder "
           "says why";
  case linux_error::registry_unavailable:
    return "no usable per-user registry folder (XDG_RUNTIME_DIR unset, or the folder is not this user's): runtime "
           "reservations fail rather than coordinate only inside this process; set PORTRES_RUNTIME_DIR to a private "
           "folder or start portresd";
  }
  return "unknown portres Linux error " + std::to_string(static_cast<int>(e));
}

std::optional<condition> condition_of(linux_error e) noexcept {
  switch (e) {
  case linux_error::reservation_lost: return condition::aborted;
  case linux_error::broker_required:
  case linux_error::broker_started:
  case linux_error::registry_unavailable: return condition::not_supported;
  case linux_error::broker_busy:
  case linux_error::port_quota:
  case linux_error::block_quota:
  case linux_error::connection_quota: return condition::exhausted;
  case linux_error::reserved_for_root: return condition::access_denied;
  case linux_error::enforcement_failed: return std::nullopt;
  }
  return std::nullopt;
}

class linux_error_category_impl final : public std::error_category {
public:
  const char* name() const noexcept override { return "portres.linux"; }
  std::string message(int value) const override { return message_of(static_cast<linux_error>(value)); }
  std::error_condition default_error_condition(int value) const noexcept override {
    if (auto c = condition_of(static_cast<linux_error>(value))) return *c;
    return {value, *this};
  }
};

} // namespace

const std::error_category& linux_error_category() noexcept {
  static const linux_error_category_impl instance;
  return instance;
}

} // namespace portres
