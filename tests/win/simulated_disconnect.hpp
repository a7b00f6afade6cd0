// A simulated DisconnectEx at the Winsock seam, completing through Asio's
// completion port as Windows' does (Wine's leaves the socket unusable), so
// the pool's side of socket reuse can run under Wine.
#ifndef PORTRES_TESTS_WIN_SIMULATED_DISCONNECT_HPP
#define PORTRES_TESTS_WIN_SIMULATED_DISCONNECT_HPP

namespace portres_test {

/// Installs the simulated DisconnectEx (and lets pools reuse sockets under
/// Wine) for its lifetime. ASSUMPTION (selftest socket_reuse,
/// socket_reuse_active_close): the disconnect completes at once, as it does
/// when the peer closed first. `pends` gives the other answer: a disconnect
/// that waits (our side closed first: Windows waits out TIME_WAIT, the
/// DisconnectEx page says) until the socket is closed. `fail_with`: a
/// Winsock code it fails with at once instead.
class simulated_disconnect {
public:
  explicit simulated_disconnect(unsigned long fail_with = 0, bool pends = false);
  ~simulated_disconnect();
  simulated_disconnect(const simulated_disconnect&) = delete;
  simulated_disconnect& operator=(const simulated_disconnect&) = delete;
};

/// Calls of the simulated DisconnectEx since it was installed, and the flags of the last.
int disconnect_calls();
unsigned long disconnect_flags();

} // namespace portres_test

#endif
