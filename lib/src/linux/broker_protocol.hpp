// The wire format between portres clients and the portresd broker. One
// SOCK_SEQPACKET message per request or reply (message boundaries come from
// the kernel: no length field a hostile peer could inflate). Fixed-size
// little-endian records; a parser that never trusts its input.
#ifndef PORTRES_SRC_LINUX_BROKER_PROTOCOL_HPP
#define PORTRES_SRC_LINUX_BROKER_PROTOCOL_HPP

#include "portres/types.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include <sys/socket.h>
#include <sys/un.h>

namespace portres::detail::broker_wire {

inline constexpr std::uint32_t magic = 0x31445250; // "PRD1"
/// The abstract socket name clients try by default (per network namespace).
inline constexpr const char* default_socket_name = "portresd";

/// The address of abstract socket `name` (a leading NUL, no file).
struct socket_address {
  sockaddr_un addr{};
  socklen_t length = 0;
};
/// nullopt when `name` is empty or too long for sun_path.
std::optional<socket_address> abstract_address(const std::string& name);
/// The address of the socket file `path`; nullopt when too long.
std::optional<socket_address> path_address(const std::string& path);

enum class op : std::uint8_t {
  acquire = 1,           ///< this connection becomes the reservation's lifetime
  release = 2,           ///< frees this connection's grant now
  classify = 3,          ///< is `token` a live reservation of some process?
  list = 4,              ///< one page of live reservations from cursor `token` (others' tokens hidden)
  persistent_create = 5, ///< uid 0 or the policy's group
  persistent_remove = 6,
  persistent_apply = 7,
  persistent_block = 8,  ///< the persistent block with `token`, if any
  hello = 9,             ///< the caller's rights (persistent allowed?)
};

struct request {
  op kind = op::hello;
  protocol proto = protocol::tcp;
  std::uint16_t first = 0;
  std::uint32_t count = 0;
  std::uint64_t token = 0;
  std::uint32_t flags = 0; ///< persistent_create: flag_force (0 or flag_force only)
};
inline constexpr std::size_t request_size = 24;
/// persistent_create even if it leaves less than the ephemeral share free
/// (`portres add --force`; the daemon still requires root or its group).
inline constexpr std::uint32_t flag_force = 1;

/// One live reservation in a listing. token 0 when hidden from the caller.
struct listed {
  protocol proto = protocol::tcp;
  std::uint16_t first = 0;
  std::uint32_t count = 0;
  std::uint32_t uid = 0;
  std::uint32_t pid = 0;
  std::uint64_t token = 0;
};
inline constexpr std::size_t listed_size = 24;

struct reply {
  op kind = op::hello;
  std::error_code result; ///< portres errors, errno values and the detailed port errors travel
  std::uint16_t first = 0;
  std::uint32_t count = 0;
  std::uint64_t token = 0;
  std::uint32_t flags = 0; ///< hello: flag_persistent; list: flag_more (ask again from cursor `token`)
  std::vector<listed> entries;
};
inline constexpr std::size_t reply_header_size = 32;
inline constexpr std::size_t max_entries_per_reply = 512;
inline constexpr std::size_t max_reply_size = reply_header_size + listed_size * max_entries_per_reply;
inline constexpr std::uint32_t flag_persistent = 1;
inline constexpr std::uint32_t flag_more = 2;

std::vector<std::uint8_t> encode(const request& r);
/// nullopt unless `bytes` is exactly one well-formed request.
std::optional<request> parse_request(std::span<const std::uint8_t> bytes);

std::vector<std::uint8_t> encode(const reply& r);
/// nullopt unless `bytes` is exactly one well-formed reply.
std::optional<reply> parse_reply(std::span<const std::uint8_t> bytes);

} // namespace portres::detail::broker_wire

#endif
