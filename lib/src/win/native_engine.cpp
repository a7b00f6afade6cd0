#include "win/native_engine.hpp"

#include "platform.hpp"
#include "portres/reservation.hpp"
#include "portres/windows.hpp"
#include "win/winsock_seam.hpp"

#include <asio/error.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/udp.hpp>
#include <asio/windows/overlapped_ptr.hpp>

#include <mutex>
#include <optional>
#include <unordered_map>

#include <winsock2.h>
#include <mstcpip.h>
#include <windows.h>

namespace portres::detail::win {
namespace {

// The socket a runtime reservation lives on: TCP or UDP, as requested. It is
// a dual-mode IPv6 socket (IPv4 where the host has no IPv6), as MsQuic opens
// its sockets: the reservation belongs to the protocol's port space, which
// IPv4 and IPv6 sockets share, so a socket of either family can associate.
// It is created non-inheritable (Asio opens sockets with only
// WSA_FLAG_OVERLAPPED): a child process holding a copy would keep the
// reservation alive after release.
class reservation_socket {
public:
  reservation_socket(const asio::any_io_executor& ex, protocol p, std::error_code& ec) {
    const bool tcp = p == protocol::tcp;
    const int type = tcp ? SOCK_STREAM : SOCK_DGRAM;
    const int proto = tcp ? IPPROTO_TCP : IPPROTO_UDP;
    constexpr DWORD flags = WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT;
    bool v6 = true;
    SOCKET s = seam().open(AF_INET6, type, proto, nullptr, 0, flags);
    if (s != INVALID_SOCKET) {
      DWORD v6_only = 0;
      ::setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, reinterpret_cast<const char*>(&v6_only), sizeof v6_only);
    } else {
      v6 = false;
      s = seam().open(AF_INET, type, proto, nullptr, 0, flags);
    }
    if (s == INVALID_SOCKET) {
      ec = {::WSAGetLastError(), std::system_category()};
      return;
    }
    if (tcp) {
      tcp_.emplace(ex);
      tcp_->assign(v6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), s, ec);
    } else {
      udp_.emplace(ex);
      udp_->assign(v6 ? asio::ip::udp::v6() : asio::ip::udp::v4(), s, ec);
    }
    if (ec) ::closesocket(s);
  }
  SOCKET handle() { return tcp_ ? tcp_->native_handle() : udp_->native_handle(); }
  void close() {
    std::error_code ignored;
    if (tcp_) tcp_->close(ignored);
    if (udp_) udp_->close(ignored);
  }

private:
  std::optional<asio::ip::tcp::socket> tcp_;
  std::optional<asio::ip::udp::socket> udp_;
};

// Live runtime tokens of this process and the sockets associated through
// portres. Associations are remembered so that bind can refuse a socket that
// was never associated, name the block when the OS has no port left, and
// fail clearly after the reservation was released.
//
// Handle values are reused: a socket associated and then closed unbound
// leaves an entry whose value a new, unassociated socket may get. Binding
// that one with port 0 would put it on an ephemeral port outside the block,
// which cannot be undone. So each association also leaves a tag in the
// socket itself: its receive timeout (SO_RCVTIMEO, which nothing reads on a
// socket that is not bound yet and Asio's overlapped I/O ignores) is set to a
// value unique to the association, and put back to the socket's own value by
// the bind that consumes it. A new socket under an old value carries its own
// timeout, not the tag, and is refused before anything is bound.
class token_table {
public:
  struct association {
    reservation_token token;
    bool runtime;       // a runtime token of this process (else persistent)
    DWORD tag;          // the receive timeout set as this association's tag
    DWORD own_timeout;  // the socket's receive timeout before
  };
  struct associated_block {
    port_range range;
    bool known; // range is valid (runtime token of this process)
    bool live;
  };

  void add(reservation r) {
    std::lock_guard lock(mutex_);
    live_[r.token] = r.range;
  }
  void forget(reservation_token t) {
    std::lock_guard lock(mutex_);
    live_.erase(t);
  }
  std::size_t live_count() {
    std::lock_guard lock(mutex_);
    return live_.size();
  }
  // Records that the OS associated `s` with `t`; fails only when the socket
  // cannot carry the tag (closed meanwhile: nothing to bind anyway).
  std::error_code remember(native_socket s, reservation_token t) {
    const auto handle = static_cast<SOCKET>(s);
    DWORD own = 0;
    int size = sizeof own;
    std::lock_guard lock(mutex_);
    const auto old = associations_.find(s);
    if (old != associations_.end() && read_timeout(handle) == old->second.tag) {
      own = old->second.own_timeout; // associated again through portres: keep the socket's own value
    } else if (::getsockopt(handle, SOL_SOCKET, SO_RCVTIMEO, reinterpret_cast<char*>(&own), &size) != 0) {
      return wsa_error();
    }
    const DWORD tag = next_tag_++;
    if (::setsockopt(handle, SOL_SOCKET, SO_RCVTIMEO, reinterpret_cast<const char*>(&tag), sizeof tag) != 0) {
      return wsa_error();
    }
    associations_[s] = {t, live_.contains(t), tag, own};
    return {};
  }
  // The association of `s` if it is this socket's (the tag matches), with its
  // block; stale entries of a reused handle value are dropped.
  std::optional<std::pair<association, associated_block>> find(native_socket s) {
    std::lock_guard lock(mutex_);
    const auto it = associations_.find(s);
    if (it == associations_.end()) return std::nullopt;
    if (read_timeout(static_cast<SOCKET>(s)) != it->second.tag) {
      associations_.erase(it); // another socket under a reused handle value
      return std::nullopt;
    }
    const auto entry = it->second;
    if (!entry.runtime) return std::pair{entry, associated_block{{}, false, true}};
    const auto block = live_.find(entry.token);
    if (block == live_.end()) return std::pair{entry, associated_block{{}, false, false}};
    return std::pair{entry, associated_block{block->second, true, true}};
  }
  // A bind consumed the association: the socket gets its own timeout back.
  void consumed(native_socket s) {
    std::lock_guard lock(mutex_);
    const auto it = associations_.find(s);
    if (it == associations_.end()) return;
    const DWORD own = it->second.own_timeout;
    ::setsockopt(static_cast<SOCKET>(s), SOL_SOCKET, SO_RCVTIMEO, reinterpret_cast<const char*>(&own), sizeof own);
    associations_.erase(it);
  }

private:
  static std::error_code wsa_error() { return {::WSAGetLastError(), std::system_category()}; }
  static DWORD read_timeout(SOCKET s) {
    DWORD value = 0;
    int size = sizeof value;
    if (::getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, reinterpret_cast<char*>(&value), &size) != 0) return 0;
    return value;
  }

  std::mutex mutex_;
  std::unordered_map<reservation_token, port_range> live_;
  std::unordered_map<native_socket, association> associations_;
  // Tags are timeouts of 12 days and more: no socket's own value in practice.
  DWORD next_tag_ = 0x40000000u + (::GetTickCount() & 0xffffu) * 0x100u;
};

class win_state final : public owned_state {
public:
  win_state(backend& owner, token_table& tokens, protocol p, reservation r, asio::any_io_executor ex,
            reservation_socket sock)
      : owned_state(owner, p, r, std::move(ex)), socket(std::move(sock)), tokens_(tokens) {}
  // The reservation dies with its socket here, released or not.
  ~win_state() override { tokens_.forget(granted().token); }

  std::mutex mutex;
  reservation_socket socket; // the reservation lives exactly as long as this socket
  bool released = false;

private:
  token_table& tokens_;
};

std::error_code wsa_error() { return {::WSAGetLastError(), std::system_category()}; }

// Wine completes an I/O whose socket was closed with ERROR_HANDLES_CLOSED; MinGW lacks the constant.
constexpr int error_handles_closed = 676;

// The completion port carries Win32 codes: the driver's NTSTATUS through
// RtlNtStatusToDosError (its table, e.g. ReactOS/Wine lib/rtl/error.c:
// STATUS_ADDRESS_ALREADY_EXISTS -> ERROR_DUP_NAME, STATUS_TOO_MANY_ADDRESSES
// -> ERROR_TOO_MANY_NAMES, STATUS_INVALID_ADDRESS_COMPONENT ->
// ERROR_INVALID_NETNAME, STATUS_INVALID_DEVICE_REQUEST -> ERROR_INVALID_FUNCTION).
// As Asio does for its own socket operations, translate them to the Winsock
// code the same failure gives when the call fails at once, so that a caller
// sees one code per failure, pending or not.
std::error_code from_completion(std::error_code ec) {
  // Asio reports completion codes in its own "asio.system" category.
  if (!ec || (ec.category() != std::system_category() && ec.category() != asio::error::get_system_category())) {
    return ec;
  }
  switch (ec.value()) {
  case ERROR_DUP_NAME:
  case ERROR_SHARING_VIOLATION: return {WSAEADDRINUSE, std::system_category()};
  case ERROR_TOO_MANY_NAMES:
  case ERROR_NO_SYSTEM_RESOURCES: return {WSAENOBUFS, std::system_category()};
  case ERROR_INVALID_NETNAME: return {WSAEADDRNOTAVAIL, std::system_category()};
  case ERROR_INVALID_FUNCTION:
  case ERROR_NOT_SUPPORTED: return {WSAEOPNOTSUPP, std::system_category()};
  case ERROR_ACCESS_DENIED: return {WSAEACCES, std::system_category()};
  case ERROR_INVALID_PARAMETER: return {WSAEINVAL, std::system_category()};
  case error_handles_closed:
  case ERROR_CANCELLED: return {WSA_OPERATION_ABORTED, std::system_category()};
  default: return {ec.value(), std::system_category()};
  }
}

// Which per-operation cancellation types an operation honours (Asio's rules):
// acquire and associate have no effect when aborted, so they support every
// type, as Asio's own IOCP operations do; a release always ends the
// reservation (the acquiring socket is closed), so it supports only terminal.
constexpr auto all_types =
    asio::cancellation_type::terminal | asio::cancellation_type::partial | asio::cancellation_type::total;

// Issues one IOCTL as overlapped I/O on Asio's completion port. `finish(ec,
// bytes)` runs exactly once on the io_context: with the completion, or with
// the immediate failure.
template <class Finish>
void start_ioctl(const asio::any_io_executor& ex, SOCKET s, DWORD code, void* in, DWORD in_size, void* out,
                 DWORD out_size, asio::cancellation_slot slot, asio::cancellation_type supported, Finish finish) {
  asio::windows::overlapped_ptr op(ex, [finish = std::move(finish)](std::error_code ec, std::size_t bytes) mutable {
    finish(from_completion(ec), bytes);
  });
  if (slot.is_connected()) {
    slot.assign([s, overlapped = op.get(), supported](asio::cancellation_type type) {
      if ((type & supported) != asio::cancellation_type::none) ::CancelIoEx(reinterpret_cast<HANDLE>(s), overlapped);
    });
  }
  DWORD bytes = 0;
  const int rc = seam().ioctl(s, code, in, in_size, out, out_size, &bytes, op.get(), nullptr);
  const int code_now = rc == 0 ? 0 : ::WSAGetLastError();
  if (rc != 0 && code_now != WSA_IO_PENDING) {
    op.complete(std::error_code(code_now, std::system_category()), 0);
  } else {
    op.release(); // the completion packet arrives on the port, also after immediate success
  }
}

// The IOCTL without OVERLAPPED: blocks until done, even on a non-blocking socket.
std::error_code blocking_ioctl(SOCKET s, DWORD code, void* in, DWORD in_size, void* out, DWORD out_size,
                               DWORD& bytes) {
  bytes = 0;
  if (seam().ioctl(s, code, in, in_size, out, out_size, &bytes, nullptr, nullptr) != 0) return wsa_error();
  return {};
}

class engine final : public backend {
public:
  backend_kind kind() const noexcept override { return backend_kind::native; }

  std::size_t live_tokens() { return tokens_.live_count(); }

  state_ptr acquire(const asio::any_io_executor& ex, protocol p, port_range r, blocking, std::error_code& ec) override {
    reservation_socket socket(ex, p, ec);
    if (ec) return nullptr;
    INET_PORT_RANGE in = windows::to_inet_port_range(r);
    INET_PORT_RESERVATION_INSTANCE out{};
    DWORD bytes = 0;
    if ((ec = blocking_ioctl(socket.handle(), SIO_ACQUIRE_PORT_RESERVATION, &in, sizeof in, &out, sizeof out, bytes))) {
      return nullptr;
    }
    return granted(ex, p, r, out, bytes, std::move(socket), ec);
  }

  void async_acquire(const asio::any_io_executor& ex, protocol p, port_range r, acquire_completion done) override {
    struct acquire_op {
      acquire_op(const asio::any_io_executor& e, protocol pr, port_range req, acquire_completion d, std::error_code& ec)
          : socket(e, pr, ec), proto(pr), requested(req), in(), out(), done(std::move(d)) {}
      reservation_socket socket;
      protocol proto;
      port_range requested;
      INET_PORT_RANGE in;
      INET_PORT_RESERVATION_INSTANCE out;
      acquire_completion done;
    };
    std::error_code ec;
    auto op = std::make_shared<acquire_op>(ex, p, r, std::move(done), ec);
    if (ec) {
      op->done(ec, runtime_reservation());
      return;
    }
    op->in = windows::to_inet_port_range(r);
    start_ioctl(ex, op->socket.handle(), SIO_ACQUIRE_PORT_RESERVATION, &op->in, sizeof op->in, &op->out,
                sizeof op->out, op->done.cancellation_slot(), all_types,
                [this, ex, op](std::error_code result, std::size_t bytes) {
                  state_ptr state;
                  if (!result) {
                    state = granted(ex, op->proto, op->requested, op->out, static_cast<DWORD>(bytes),
                                    std::move(op->socket), result);
                  }
                  op->done(result, runtime_reservation(std::move(state)));
                });
  }

  void release(owned_state& s, blocking, std::error_code& ec) override {
    auto& state = static_cast<win_state&>(s);
    std::lock_guard lock(state.mutex);
    if (state.released) {
      ec = error::already_released;
      return;
    }
    state.released = true;
    INET_PORT_RESERVATION_TOKEN in = windows::to_inet_token(s.granted().token);
    DWORD bytes = 0;
    ec = blocking_ioctl(state.socket.handle(), SIO_RELEASE_PORT_RESERVATION, &in, sizeof in, nullptr, 0, bytes);
    tokens_.forget(s.granted().token);
    state.socket.close(); // closing the acquiring socket ends the reservation in any case
  }

  void async_release(std::shared_ptr<owned_state> s, status_completion done) override {
    auto state = std::static_pointer_cast<win_state>(std::move(s));
    {
      std::lock_guard lock(state->mutex);
      if (state->released) {
        done(error::already_released);
        return;
      }
      state->released = true;
    }
    struct release_op {
      std::shared_ptr<win_state> state;
      INET_PORT_RESERVATION_TOKEN in;
      status_completion done;
    };
    auto op = std::make_shared<release_op>(release_op{state, windows::to_inet_token(state->granted().token), std::move(done)});
    start_ioctl(state->executor(), state->socket.handle(), SIO_RELEASE_PORT_RESERVATION, &op->in, sizeof op->in,
                nullptr, 0, op->done.cancellation_slot(), asio::cancellation_type::terminal,
                [this, op](std::error_code result, std::size_t) {
                  tokens_.forget(op->state->granted().token);
                  op->state->socket.close();
                  // Aborted (cancelled, or the socket closed under it) or
                  // not, the acquiring socket is closed now and the
                  // reservation is gone: what the caller asked for happened.
                  if (result == condition::aborted) result.clear();
                  op->done(result);
                });
  }

  void set_port_policy(owned_state&, port_policy, std::error_code& ec) override {
    ec.clear(); // the OS picks ports from a native reservation
  }

  void associate(native_socket s, reservation_token t, blocking, std::error_code& ec) override {
    if ((ec = check_socket(s))) return;
    INET_PORT_RESERVATION_TOKEN in = windows::to_inet_token(t);
    DWORD bytes = 0;
    ec = blocking_ioctl(s, SIO_ASSOCIATE_PORT_RESERVATION, &in, sizeof in, nullptr, 0, bytes);
    if (!ec) ec = tokens_.remember(s, t);
  }

  void async_associate(const asio::any_io_executor& ex, native_socket s, reservation_token t,
                       status_completion done) override {
    if (auto ec = check_socket(s)) {
      done(ec);
      return;
    }

    struct associate_op {
      native_socket socket;
      reservation_token token;
      INET_PORT_RESERVATION_TOKEN in;
      status_completion done;
    };
    auto op = std::make_shared<associate_op>(associate_op{s, t, windows::to_inet_token(t), std::move(done)});
    start_ioctl(ex, s, SIO_ASSOCIATE_PORT_RESERVATION, &op->in, sizeof op->in, nullptr, 0,
                op->done.cancellation_slot(), all_types, [this, op](std::error_code result, std::size_t) {
                  if (!result) result = tokens_.remember(op->socket, op->token);
                  op->done(result);
                });
  }

  std::uint16_t bind(native_socket s, const asio::ip::address* local, std::error_code& ec) override {
    const auto info = platform::inspect(s, ec);
    if (ec) return 0;
    const asio::ip::address address =
        local ? *local
              : (info.ipv6 ? asio::ip::address(asio::ip::address_v6::any()) : asio::ip::address(asio::ip::address_v4::any()));
    const auto taken = tokens_.find(s);
    if (!taken) {
      ec = error::not_associated; // nothing was bound
      return 0;
    }
    const auto& [entry, block] = *taken;
    if (!block.live) {
      ec = error::already_released; // the block went away between associate and bind
      return 0;
    }
    // Port 0: the OS picks from the associated reservation.
    ec = platform::bind_to(s, address, 0);
    if (ec) {
      // The socket is still unbound and associated: the caller may retry
      // (another address, or once a port of the block is free again).
      if (block.known && (ec == condition::in_use || ec == condition::exhausted)) {
        ec = block_exhausted_error(block.range.first(), block.range.count());
      }
      return 0;
    }
    tokens_.consumed(s);
    const auto port = platform::inspect(s, ec).bound_port;
    // The tag makes this unreachable unless the OS ignored the association.
    if (!ec && block.known && !block.range.contains(port)) ec = error::bad_response;
    return ec ? 0 : port;
  }

private:
  state_ptr granted(const asio::any_io_executor& ex, protocol p, port_range requested,
                    const INET_PORT_RESERVATION_INSTANCE& out, DWORD bytes, reservation_socket socket,
                    std::error_code& ec) {
    const auto r = windows::from_instance(out);
    // A whole instance must come back, with the size asked for, and the block asked for if specific.
    if (bytes != sizeof out || !r.token || r.range.count() != requested.count() || r.range.validate(false) ||
        (!requested.is_wildcard() && r.range != requested)) {
      ec = error::bad_response;
      return nullptr;
    }
    tokens_.add(r);
    return std::make_shared<win_state>(*this, tokens_, p, r, ex, std::move(socket));
  }

  static std::error_code check_socket(native_socket s) {
    std::error_code ec;
    const auto info = platform::inspect(s, ec);
    if (!ec && info.bound_port != 0) ec = error::already_bound;
    return ec;
  }

  token_table tokens_;
};

engine& instance() {
  static engine e;
  return e;
}

} // namespace

backend& native_engine() { return instance(); }

std::size_t live_runtime_tokens() { return instance().live_tokens(); }

} // namespace portres::detail::win
