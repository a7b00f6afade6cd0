// A simulated Winsock provider for the port-reservation IOCTLs, installed at
// the engine's WSAIoctl/bind seam. It behaves as the reference pages say
// (byte order, buffer-size checks, non-TCP/UDP sockets, wildcard and
// specific blocks, bind from the block until it is used up, WSAEACCES for
// persistent tokens without rights) and completes overlapped calls through
// the real completion port: at once, later (pending), or never until the
// socket is closed or the I/O cancelled (hang: a real pending Winsock I/O).
// It also stands in for iphlpapi's Create/Lookup/Delete persistent functions
// at the GetProcAddress seam (Wine exports none of them).
#ifndef PORTRES_TESTS_WIN_SIMULATED_PROVIDER_HPP
#define PORTRES_TESTS_WIN_SIMULATED_PROVIDER_HPP

#include "portres/types.hpp"

#include <asio/io_context.hpp>

#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

namespace portres_test {

class simulated_provider {
public:
  enum class completion_mode { immediate, pending, hang };

  /// Installs itself; completions go to `io`'s completion port.
  explicit simulated_provider(asio::io_context& io);
  ~simulated_provider(); // restores the real Winsock calls
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
  /// A faulty provider: acquire reports one byte less than an instance.
  void set_short_response(bool short_response);

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
