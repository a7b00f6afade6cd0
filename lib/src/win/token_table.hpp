// The Windows engine's memory of live runtime tokens and of the sockets it
// associated, with the tag that ties each association to its socket.
#ifndef PORTRES_SRC_WIN_TOKEN_TABLE_HPP
#define PORTRES_SRC_WIN_TOKEN_TABLE_HPP

#include "portres/types.hpp"
#include "portres/detail/runtime_state.hpp"

#include <cstdint>
#include <mutex>
#include <optional>
#include <system_error>
#include <unordered_map>
#include <utility>

namespace portres::detail::win {

// Associations are remembered so that bind can refuse a socket that was
// never associated, name the block when the OS has no port left, and fail
// clearly after the reservation was released.
//
// Handle values are reused: a socket associated and then closed leaves an
// entry whose value a new, unassociated socket may get. Binding that one
// with port 0 would put it on an ephemeral port outside the block, which
// cannot be undone. So each association leaves a tag in the socket itself:
// its receive timeout (SO_RCVTIMEO, which nothing reads on a socket that is
// not bound yet and Asio's overlapped I/O ignores) is set to a value unique
// to the association, and put back to the socket's own value by the bind
// that consumes it. The tag is written before the associate IOCTL is issued
// and only the association that wrote it confirms or removes it, so a
// completion arriving after its socket was closed and the handle value
// reused never marks the new socket.
class token_table {
public:
  struct association {
    reservation_token token;
    bool runtime;       // a runtime token of this process (else persistent)
    std::uint32_t tag;  // the receive timeout set as this association's tag
    std::uint32_t own;  // the socket's receive timeout before
    bool confirmed;     // the OS associated it (else the IOCTL is under way)
  };
  struct associated_block {
    port_range range;
    bool known; // range is valid (runtime token of this process)
    bool live;
  };

  void add(reservation r);
  void forget(reservation_token t);
  std::size_t live_count();

  /// Tags `s` for an associate about to be issued; the tag, or an error when
  /// the socket cannot carry it (then nothing was changed).
  std::uint32_t prepare(native_socket s, reservation_token t, std::error_code& ec);
  /// The OS associated `s`: confirms the entry if it is still the one `tag`
  /// made and the socket still carries it.
  void confirm(native_socket s, std::uint32_t tag);
  /// The associate failed: removes the entry `tag` made, if it is still
  /// there, and gives the socket its own timeout back if it still carries the tag.
  void abandon(native_socket s, std::uint32_t tag);

  /// The confirmed association of `s` if it is this socket's (the tag
  /// matches), with its block; stale entries of a reused handle value are dropped.
  std::optional<std::pair<association, associated_block>> find(native_socket s);
  /// A bind consumed the association: the socket gets its own timeout back.
  void consumed(native_socket s);

private:
  std::mutex mutex_;
  std::unordered_map<reservation_token, port_range> live_;
  std::unordered_map<native_socket, association> associations_;
  std::uint32_t next_tag_ = 0;
};

} // namespace portres::detail::win

#endif
