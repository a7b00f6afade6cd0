#include "win/native_engine.hpp"

#include "os_trace.hpp"
#include "platform.hpp"
#include "portres/reservation.hpp"
#include "portres/windows.hpp"
#include "win/overlapped_ioctl.hpp"
#include "win/token_table.hpp"
#include "win/winsock_seam.hpp"

#include <asio/ip/tcp.hpp>
#include <asio/ip/udp.hpp>

#include <mutex>
#include <optional>

#include <winsock2.h>
#include <mstcpip.h>
#include <windows.h>

namespace portres::detail::win {
namespace {

// The socket a runtime reservation lives on: TCP or UDP, as requested. It is
// a dual-mode IPv6 socket, as MsQuic opens its sockets: the reservation
// belongs to the protocol's port space, which IPv4 and IPv6 sockets share,
// and a socket of either family can associate (the pool's own sockets are
// dual-mode too; `portres selftest` asks the OS about plain AF_INET ones). It
// is IPv4 where the host has no IPv6 or IPV6_V6ONLY cannot be turned off (an
// IPv6-only socket might acquire a block IPv4 sockets cannot use). It is
// created non-inheritable (Asio opens sockets with only WSA_FLAG_OVERLAPPED):
// a child process holding a copy would keep the reservation alive after release.
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
      const DWORD v6_only = 0;
      if (seam().set_option(s, IPPROTO_IPV6, IPV6_V6ONLY, reinterpret_cast<const char*>(&v6_only), sizeof v6_only) != 0) {
        ::closesocket(s);
        s = INVALID_SOCKET;
      }
    }
    if (s == INVALID_SOCKET) {
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

// Which per-operation cancellation types an operation honours (Asio's rules):
// acquire and associate have no effect when aborted, so they support every
// type, as Asio's own IOCP operations do; a release always ends the
// reservation (the acquiring socket is closed), so it supports only terminal.
constexpr auto all_types =
    asio::cancellation_type::terminal | asio::cancellation_type::partial | asio::cancellation_type::total;

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
    return granted(ex, p, r, out, std::move(socket), ec);
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
                [this, ex, op](std::error_code result, std::size_t) {
                  state_ptr state;
                  if (!result) {
                    state = granted(ex, op->proto, op->requested, op->out, std::move(op->socket), result);
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
    const auto tag = tokens_.prepare(s, t, ec);
    if (ec) return;
    INET_PORT_RESERVATION_TOKEN in = windows::to_inet_token(t);
    DWORD bytes = 0;
    ec = blocking_ioctl(static_cast<SOCKET>(s), SIO_ASSOCIATE_PORT_RESERVATION, &in, sizeof in, nullptr, 0, bytes);
    if (ec) {
      tokens_.abandon(s, tag);
    } else {
      tokens_.confirm(s, tag);
    }
  }

  void async_associate(const asio::any_io_executor& ex, native_socket s, reservation_token t,
                       status_completion done) override {
    std::error_code ec = check_socket(s);
    // Tagged before the IOCTL is issued (token_table.hpp).
    const auto tag = ec ? 0 : tokens_.prepare(s, t, ec);
    if (ec) {
      done(ec);
      return;
    }
    struct associate_op {
      native_socket socket;
      std::uint32_t tag;
      INET_PORT_RESERVATION_TOKEN in;
      status_completion done;
    };
    auto op = std::make_shared<associate_op>(associate_op{s, tag, windows::to_inet_token(t), std::move(done)});
    start_ioctl(ex, static_cast<SOCKET>(s), SIO_ASSOCIATE_PORT_RESERVATION, &op->in, sizeof op->in, nullptr, 0,
                op->done.cancellation_slot(), all_types, [this, op](std::error_code result, std::size_t) {
                  if (result) {
                    tokens_.abandon(op->socket, op->tag);
                  } else {
                    tokens_.confirm(op->socket, op->tag);
                  }
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
    const int raw = ec ? ec.value() : 0;
    if (ec) {
      // The socket is still unbound and associated: the caller may retry
      // (another address, or once a port of the block is free again).
      // WSAEACCES from bind means a port reserved, excluded or held for
      // exclusive use by someone else, not a missing right: for an
      // associated socket, no port of the block for us now.
      const bool taken_by_others = ec == std::error_code(WSAEACCES, std::system_category());
      if (block.known && (taken_by_others || ec == condition::in_use || ec == condition::exhausted)) {
        ec = block_exhausted_error(block.range.first(), block.range.count());
      } else if (taken_by_others) {
        ec = error::port_in_use;
      }
    }
    trace_bind(s, raw, ec);
    if (ec) return 0;
    tokens_.consumed(s);
    const auto port = platform::inspect(s, ec).bound_port;
    // The tag makes this unreachable unless the OS ignored (or dropped) the association.
    if (!ec && block.known && !block.range.contains(port)) ec = error::bad_response;
    return ec ? 0 : port;
  }

  asio::ip::address pool_address(const asio::ip::address& local) const override {
    // Pool sockets are dual-mode IPv6 sockets, like the acquiring socket:
    // an IPv4 address in its v4-mapped form, the IPv4 any-address as IPv6's.
    if (!local.is_v4()) return local;
    if (local.to_v4().is_unspecified()) return asio::ip::address_v6::any();
    return asio::ip::make_address_v6(asio::ip::v4_mapped, local.to_v4());
  }

private:
  state_ptr granted(const asio::any_io_executor& ex, protocol p, port_range requested,
                    const INET_PORT_RESERVATION_INSTANCE& out, reservation_socket socket,
                    std::error_code& ec) {
    const auto r = windows::from_instance(out);
    // The instance is judged by its content (`out` starts zeroed): a token,
    // the count asked for, the block asked for if specific. Nothing documents
    // the byte count (an overlapped completion may report 0): the trace keeps it.
    if (!r.token || r.range.count() != requested.count() || r.range.validate(false) ||
        (!requested.is_wildcard() && r.range != requested)) {
      ec = error::bad_response;
      return nullptr;
    }
    tokens_.add(r);
    return std::make_shared<win_state>(*this, tokens_, p, r, ex, std::move(socket));
  }

  static void trace_bind(native_socket s, int raw, const std::error_code& result) {
    const auto id = os_trace::begin({"bind", static_cast<std::uint64_t>(s), false, raw, std::nullopt, 0, result});
    os_trace::finish(id, std::nullopt, 0, result);
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
