// A simulated Winsock provider for the port-reservation IOCTLs, installed at
// the engine's WSAIoctl/bind seam. It behaves as the reference pages say
// (byte order, buffer-size checks, non-TCP/UDP sockets, wildcard and
// specific blocks, bind from the block until it is used up, WSAEACCES for
// persistent tokens without rights) and completes overlapped calls through
// the real completion port: at once, later (pending), or never until the
// socket is closed or the I/O cancelled (hang: a real pending Winsock I/O).
// It also stands in for iphlpapi's Create/Lookup/Delete persistent functions
// at the GetProcAddress seam (Wine exports none of them). Where the pages are
// silent it follows stated ASSUMPTIONS (below), each measured on real Windows
// by a `portres selftest` check and each switchable to the other answer.
#ifndef PORTRES_TESTS_WIN_SIMULATED_PROVIDER_HPP
#define PORTRES_TESTS_WIN_SIMULATED_PROVIDER_HPP

#include "portres/backend.hpp"
#include "portres/types.hpp"

#include <asio/io_context.hpp>

#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

namespace portres_test {

/// Puts the native backend in force for a test (the simulated provider answers for it).
struct native_selected {
  native_selected() { portres::select_backend(portres::backend_kind::native); }
  ~native_selected() { portres::select_backend(portres::backend_kind::automatic); }
  native_selected(const native_selected&) = delete;
  native_selected& operator=(const native_selected&) = delete;
};

class simulated_provider {
public:
  /// How a call that succeeds reaches the completion port (overlapped calls).
  /// immediate: the call returns success and its packet is dequeued after the
  ///   engine handed the operation to Asio. ASSUMPTION (the pages say only
  ///   that the IOCTLs "may" complete later): selftest's async checks record
  ///   per call whether it returned at once (0) or pended (997).
  /// immediate_dequeued_first: the other order: an io thread dequeued the
  ///   packet before the engine handed the operation over (Asio parks it).
  /// pending: WSA_IO_PENDING; completed by deliver_pending().
  /// hang: a real pending Winsock I/O, ended only by cancel or close.
  enum class completion_mode { immediate, immediate_dequeued_first, pending, hang };

  /// Installs itself; completions go to `io`'s completion port.
  explicit simulated_provider(asio::io_context& io);
  /// Restores the real Winsock calls; calls still held back complete with
  /// ERROR_OPERATION_ABORTED, as a closed socket's pending I/O does.
  ~simulated_provider();
  simulated_provider(const simulated_provider&) = delete;
  simulated_provider& operator=(const simulated_provider&) = delete;

  void set_mode(completion_mode mode);
  /// Completes every call held back in pending mode, with `win32_error`
  /// (a completion port's code, 0 for success); returns how many.
  std::size_t deliver_pending(unsigned long win32_error = 0);
  /// The socket the last SIO_ACQUIRE_PORT_RESERVATION was issued on.
  std::uintptr_t last_acquiring_socket() const;

  /// A persistent reservation known to the simulated OS.
  void add_persistent(portres::protocol p, portres::port_range range, portres::reservation_token token);
  /// Whether the caller has administrator rights (persistent tokens and the
  /// persistent functions need them).
  void set_administrator(bool admin);

  // The simulation's beliefs where the reference pages are silent. Each is
  // an ASSUMPTION, measured on real Windows by the `portres selftest` check
  // named, and each can be switched to the other answer.

  /// ASSUMPTION (selftest probe_ipv4_on_dual_mode): an AF_INET socket
  /// associates with a block acquired on a dual-mode AF_INET6 socket. True:
  /// the other answer, WSAEINVAL for every AF_INET socket.
  void set_ipv4_sockets_refused(bool refused);
  /// ASSUMPTION (selftest exhausted_21st): a bind that finds no free port of
  /// the block fails with WSAEADDRINUSE. Sets the code it fails with instead.
  void set_exhausted_bind_error(int winsock_code);
  /// ASSUMPTION (selftest probe_failed_bind_keeps_association): a failed bind
  /// leaves the socket associated. False: the OS drops the association, so a
  /// retried bind takes an ephemeral port outside the block.
  void set_failed_bind_keeps_association(bool keeps);
  /// ASSUMPTION (selftest wildcard_acquire reports the count): acquire
  /// returns sizeof(INET_PORT_RESERVATION_INSTANCE) bytes. Sets the count
  /// reported instead (the instance is still written in full).
  void set_acquire_bytes(unsigned long bytes);
  /// A faulty provider: acquire answers a zero token.
  void set_zero_token(bool zero);
  /// Overlapped reservation calls pend and complete through the port with
  /// `win32_error` (0: as the mode says); blocking calls are unaffected.
  /// What a system whose overlapped path alone fails (ERROR_NOT_SUPPORTED) does.
  void set_overlapped_error(unsigned long win32_error);

  /// One reservation IOCTL as the provider saw it.
  struct ioctl_call {
    unsigned long code;
    std::uintptr_t socket;
    bool overlapped;        // issued with an OVERLAPPED (may pend), else a blocking call
    std::thread::id thread; // the thread that issued it
  };
  /// Every SIO_*_PORT_RESERVATION call so far, in order.
  std::vector<ioctl_call> calls() const;
  /// The socket was closed: the OS drops its association (Asio closes
  /// sockets without going through the seam, so tests say it).
  void socket_closed(std::uintptr_t socket);
};

} // namespace portres_test

#endif
