// The private contract between the portable core and the per-OS code.
// Each function here has exactly one implementation per OS, in linux/ or win/;
// the build picks the folder.
#ifndef PORTRES_SRC_PLATFORM_HPP
#define PORTRES_SRC_PLATFORM_HPP

#include "portres/detail/runtime_state.hpp"
#include "portres/error.hpp"
#include "portres/types.hpp"
#include "portres/usage.hpp"
#include "core/port_bitmap.hpp"

#include <asio/ip/address.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>
#include <system_error>

namespace portres::detail {

/// The portable meaning of a std::system_category() value of this OS, if any.
std::optional<condition> system_condition(int value) noexcept;

/// The portable meaning of an errno value (std::generic_category(), and
/// std::system_category() on POSIX), if any.
std::optional<condition> errno_condition(int value) noexcept;

/// `ec` told towards a peer: a block_exhausted_error becomes the
/// destination_exhausted_error of the same block naming `peer`; any other
/// error is returned as it is. (core/error.cpp, beside the packing it reads.)
std::error_code exhausted_towards(std::error_code ec, std::string_view peer);

namespace platform {

/// What portres needs to know about a socket before associating or binding it.
struct socket_info {
  protocol proto = protocol::tcp;
  bool ipv6 = false;
  std::uint16_t bound_port = 0; ///< 0 while unbound
  std::uint64_t key = 0;        ///< identifies the socket for its lifetime (Linux: SO_COOKIE)
};

/// Whether socket_info::key stays unique for a socket's whole life (Linux:
/// SO_COOKIE). Windows handle values are reused after close, so there an
/// association left by a socket closed before bind is overwritten, not refused.
bool socket_key_is_unique() noexcept;

/// error::unsupported_socket for anything but a TCP or UDP socket.
socket_info inspect(native_socket s, std::error_code& ec);

/// Only the socket's key (one system call): the hot path of bind.
std::uint64_t socket_key(native_socket s, std::error_code& ec);

/// A new TCP or UDP socket that child processes do not inherit; close_socket closes it.
native_socket open_socket(bool ipv6, protocol p, std::error_code& ec);
void close_socket(native_socket s) noexcept;

/// Explicit bind to `address`:`port`.
std::error_code bind_to(native_socket s, const asio::ip::address& address, std::uint16_t port);

/// Before a TCP bind, so that the port can carry one connection per
/// destination: the bind then succeeds beside the user's other such sockets,
/// and connect fails only if the 4-tuple is taken. Linux: SO_REUSEPORT (its
/// sharing needs the same uid; SO_REUSEADDR's would let another user's socket
/// share the port). Windows: SO_REUSEADDR.
std::error_code share_address(native_socket s);

/// Whether share_address lets only the user's own sockets share a port. Linux:
/// yes (SO_REUSEPORT needs the same uid). Windows: no (SO_REUSEADDR binds over
/// any socket not opened with SO_EXCLUSIVEADDRUSE, a listener's too), so the
/// portable backend keeps each port exclusive there (issue 18: ports stay
/// exclusive where the OS cannot share them safely).
bool shares_ports_safely() noexcept;

/// Whether `s` is still the socket that had `key` when it was bound to `port`
/// (Linux: its SO_COOKIE; Windows: the handle still names a socket on that
/// port): a socket the library tracks without seeing it close.
bool socket_alive(native_socket s, std::uint64_t key, std::uint16_t port) noexcept;

/// Ports of `range` held by any socket of this machine (network namespace),
/// in any state (TIME_WAIT included), as far as the OS can tell. Costs a
/// walk of the kernel's socket tables: milliseconds, whatever the range.
port_bitmap held_ports(protocol p, port_range range, std::error_code& ec);

/// Asks the OS, port by port, whether anything in this network namespace
/// holds each of `ports` (at most 32) for protocol `p`: bit i of the answer
/// is set when nothing does. Linux tries each port with a bind of a
/// dual-stack wildcard socket without SO_REUSEADDR, which the kernel refuses
/// while any socket has the port (any address, any state, TIME_WAIT
/// included, through any descriptor; not a TCP socket bound to a VRF device,
/// which has the VRF's own port table): one bind per port, and a socket and a
/// close per free one. error::os_unsupported where the OS's bind rules do not
/// make that exact (Windows): callers use held_ports.
std::uint32_t unheld_ports(protocol p, std::span<const std::uint16_t> ports, std::error_code& ec);

/// The OS range for automatic (ephemeral) port allocation.
port_range ephemeral_range();

/// Whether a connected TCP socket can be disconnected and connected again
/// from the same port (Windows: DisconnectEx with TF_REUSE_SOCKET); when
/// not, `reason` says why.
bool socket_reuse(std::string& reason);

/// Starts that disconnect; `done` gets condition::not_supported where
/// socket_reuse() is false.
void disconnect_for_reuse(const asio::any_io_executor& ex, native_socket s, status_completion done);

/// A short description of the OS, e.g. "Linux 6.18.44".
std::string name();

/// This process' id.
std::uint32_t process_id() noexcept;

/// 64 random bits from the OS (Linux getrandom; Windows rand_s through
/// std::random_device), never zero: reservation tokens.
std::uint64_t os_random_u64();

// Listings for tools (portres/usage.hpp).
std::vector<runtime_entry> runtime_entries(std::error_code& ec);
std::vector<port_user> port_users(protocol p, port_range r, std::error_code& ec);

// Persistent reservations (arguments validated: specific, in range).
reservation_token persistent_create(protocol p, port_range r, std::error_code& ec);
reservation_token persistent_lookup(protocol p, port_range r, std::error_code& ec);
void persistent_remove(protocol p, port_range r, std::error_code& ec);
std::vector<reservation> persistent_list(protocol p, std::error_code& ec);
void persistent_apply(std::error_code& ec);

} // namespace platform
} // namespace portres::detail

#endif
