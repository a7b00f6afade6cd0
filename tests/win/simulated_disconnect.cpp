#include "win/simulated_disconnect.hpp"

#include "win/winsock_seam.hpp"

#include <winsock2.h>
#include <mswsock.h>
#include <mstcpip.h>

namespace portres_test {
namespace {

namespace seam = portres::detail::win;

DWORD last_flags = 0;
int call_count = 0;
DWORD disconnect_fails_with = 0; // 0: succeed
bool disconnect_pends = false;

// The other answer (pends): a real pending I/O on the socket, ended only by closing it.
BOOL PASCAL simulated(SOCKET s, LPOVERLAPPED overlapped, DWORD flags, DWORD) {
  ++call_count;
  last_flags = flags;
  if (disconnect_fails_with != 0) {
    ::WSASetLastError(static_cast<int>(disconnect_fails_with));
    return FALSE;
  }
  if (disconnect_pends) {
    DWORD ignored = 0;
    if (::WSAIoctl(s, SIO_ADDRESS_LIST_CHANGE, nullptr, 0, nullptr, 0, &ignored, overlapped, nullptr) != 0 &&
        ::WSAGetLastError() != WSA_IO_PENDING) {
      return FALSE;
    }
    ::WSASetLastError(WSA_IO_PENDING);
    return FALSE;
  }
  // A real overlapped operation on the same socket and OVERLAPPED (a
  // zero-byte send): its packet arrives on Asio's port as DisconnectEx's
  // would, and closing the socket aborts it. Then the connection really ends,
  // as DisconnectEx ends it: the peer reads end of stream. (Reconnecting the
  // same handle cannot be simulated: Wine refuses connect on a socket that was
  // ever connected with WSAEISCONN, even after connect(AF_UNSPEC);
  // `portres selftest` checks reconnection on real Windows.)
  WSABUF nothing{0, nullptr};
  DWORD sent = 0;
  if (::WSASend(s, &nothing, 1, &sent, 0, overlapped, nullptr) != 0 && ::WSAGetLastError() != WSA_IO_PENDING) {
    return FALSE;
  }
  ::shutdown(s, SD_BOTH);
  return TRUE;
}

} // namespace

simulated_disconnect::simulated_disconnect(unsigned long fail_with, bool pends) {
  call_count = 0;
  last_flags = 0;
  disconnect_fails_with = fail_with;
  disconnect_pends = pends;
  seam::seam().disconnect = simulated;
  seam::seam().reuse_under_wine = true;
}

simulated_disconnect::~simulated_disconnect() {
  seam::seam().disconnect = nullptr;
  seam::seam().reuse_under_wine = false;
}

int disconnect_calls() { return call_count; }
unsigned long disconnect_flags() { return last_flags; }

} // namespace portres_test
