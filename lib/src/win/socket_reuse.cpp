// Socket reuse after a disconnect: DisconnectEx with TF_REUSE_SOCKET, issued
// overlapped on Asio's completion port, so a pool can connect the same
// socket again from the same port instead of closing and creating one.
#include "platform.hpp"

#include "win/wine.hpp"
#include "win/winsock_seam.hpp"

#include <asio/windows/overlapped_ptr.hpp>

#include <winsock2.h>
#include <mswsock.h>
#include <windows.h>

namespace portres::detail::platform {
namespace {

// The provider's DisconnectEx (an extension function, found per socket).
win::winsock_seam::disconnect_fn find_disconnect(SOCKET s, std::error_code& ec) {
  if (auto fn = win::seam().disconnect) return fn;
  GUID id = WSAID_DISCONNECTEX;
  LPFN_DISCONNECTEX fn = nullptr;
  DWORD bytes = 0;
  if (win::seam().ioctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &id, sizeof id, &fn, sizeof fn, &bytes, nullptr,
                        nullptr) != 0) {
    ec = {::WSAGetLastError(), std::system_category()};
    return nullptr;
  }
  return fn;
}

} // namespace

bool socket_reuse(std::string& reason) {
  const auto wine = win::wine_version();
  if (wine.empty() || win::seam().reuse_under_wine) return true;
  reason = "Wine " + wine + ": DisconnectEx(TF_REUSE_SOCKET) completes but the socket cannot connect again";
  return false;
}

void disconnect_for_reuse(const asio::any_io_executor& ex, native_socket s, status_completion done) {
  std::string reason;
  if (!socket_reuse(reason)) {
    done(error::os_unsupported);
    return;
  }
  std::error_code ec;
  const auto disconnect = find_disconnect(s, ec);
  if (!disconnect) {
    done(ec);
    return;
  }
  asio::windows::overlapped_ptr op(ex, [done = std::move(done)](std::error_code result, std::size_t) mutable {
    done(result);
  });
  if (disconnect(s, op.get(), TF_REUSE_SOCKET, 0)) {
    op.release(); // the completion packet arrives on the port, also after immediate success
    return;
  }
  const int code = ::WSAGetLastError();
  if (code == WSA_IO_PENDING) {
    op.release();
  } else {
    op.complete(std::error_code(code, std::system_category()), 0);
  }
}

} // namespace portres::detail::platform
