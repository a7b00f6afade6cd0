// Which implementation serves portres' runtime operations, and what this
// machine supports.
#ifndef PORTRES_BACKEND_HPP
#define PORTRES_BACKEND_HPP

#include <string>
#include <system_error>

namespace portres {

/// Backend selection.
///  - automatic: native where the OS supports it, otherwise fallback;
///  - native: the OS mechanism (Windows: port-reservation IOCTLs; Linux:
///    cross-process registry, explicit bind and ip_local_reserved_ports);
///  - fallback: the portable core alone: the library picks blocks and ports
///    and binds explicitly, coordinating within this process.
enum class backend_kind { automatic, native, fallback };

const char* to_string(backend_kind k) noexcept;

/// Selects the backend for reservations acquired from now on. The initial
/// choice comes from the environment variable PORTRES_BACKEND
/// (auto|native|fallback; unset means auto). Fails with
/// error::backend_unavailable when `native` cannot run here.
void select_backend(backend_kind kind);
void select_backend(backend_kind kind, std::error_code& ec) noexcept;

/// The backend in force: native or fallback, never automatic.
backend_kind active_backend();

/// What this machine supports, and why not where it does not.
struct capability_report {
  std::string platform;             ///< e.g. "Linux 6.18.0", "Windows 10.0.19045", "Wine 8.0"
  bool native_runtime = false;      ///< OS runtime reservations usable
  std::string native_runtime_reason;  ///< why not, when not
  bool persistent = false;          ///< persistent reservations usable
  std::string persistent_reason;
  bool kernel_enforcement = false;  ///< Linux: ip_local_reserved_ports writable
  std::string kernel_enforcement_reason;
  bool socket_reuse = false;        ///< pools reuse disconnected TCP sockets (Windows DisconnectEx)
  std::string socket_reuse_reason;
  /// TCP: a reserved port carries one connection per destination (source
  /// address, peer address and port): pools' async_connect and
  /// portres::bind towards a peer. UDP ports stay one socket each.
  bool port_sharing = false;
  std::string port_sharing_reason;
  /// Linux: who coordinates runtime reservations. True with the portresd
  /// broker: every process of every user in this network namespace, kernel-
  /// enforced. False: the per-user registry (only processes sharing its folder).
  bool machine_wide = false;
  std::string coordination;         ///< the mode in force and what it means, in words
  /// Damage found in the state (an unreadable persistent store, a bad state
  /// folder): runtime reservations keep working; empty when none.
  std::string state_damage;
};

capability_report capabilities();

} // namespace portres

#endif
