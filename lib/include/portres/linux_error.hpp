// Errors only the Linux backend reports: the portresd broker, its policy, the
// per-user registry folder and the kernel list (ip_local_reserved_ports).
// Category "portres.linux"; each value compares equal to a portable
// portres::condition where one fits. Linux only.
#ifndef PORTRES_LINUX_ERROR_HPP
#define PORTRES_LINUX_ERROR_HPP

#if !defined(__linux__)
#error "<portres/linux_error.hpp> is for Linux builds only"
#endif

#include <system_error>

namespace portres {

enum class linux_error {
  // 0 is success and never used.
  reservation_lost = 1, ///< portresd went away, so the reservation ended (acquire again); condition::aborted
  broker_required,      ///< PORTRES_BROKER=required (or a name) and no genuine portresd answers; not_supported
  broker_started,       ///< portresd serves this namespace but this process uses the per-user registry; not_supported
  broker_busy,          ///< portresd did not take the connection in time (backlog full); exhausted
  port_quota,           ///< portresd policy: the uid would hold more ports than max-ports; exhausted
  block_quota,          ///< portresd policy: the uid would hold more blocks than max-blocks; exhausted
  connection_quota,     ///< portresd policy: the uid (or all users) hold their connection limit; exhausted
  reserved_for_root,    ///< portresd policy: the block lies in root's share (root-reserve); access_denied
  enforcement_failed,   ///< ip_local_reserved_ports (or the record of portres' entries) could not be written; nothing granted
  registry_unavailable, ///< no usable per-user registry folder: acquire fails closed; not_supported
};

const std::error_category& linux_error_category() noexcept;

inline std::error_code make_error_code(linux_error e) noexcept {
  return {static_cast<int>(e), linux_error_category()};
}

} // namespace portres

template <>
struct std::is_error_code_enum<portres::linux_error> : std::true_type {};

#endif
