// The shared state behind a runtime_reservation and the library entry points
// the public templates call. Each backend derives its own state.
#ifndef PORTRES_DETAIL_RUNTIME_STATE_HPP
#define PORTRES_DETAIL_RUNTIME_STATE_HPP

#include "portres/detail/asio_version.hpp"
#include "portres/detail/completion.hpp"
#include "portres/detail/destination.hpp"
#include "portres/types.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/ip/address.hpp>
#include <asio/detail/socket_types.hpp>
#include <asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <system_error>
#include <vector>

namespace portres {
class runtime_reservation;
}

namespace portres::detail {

/// Told when a runtime reservation ends (released), so that what waits on
/// its ports (a pool's waiters) stops waiting at once.
class reservation_watcher {
public:
  virtual void reservation_ended(std::error_code why) noexcept = 0;

protected:
  ~reservation_watcher() = default;
};

/// What a runtime reservation is; the backend's derived class holds what
/// keeps it alive (Windows: the acquiring socket; Linux: the flocked file).
class runtime_state {
public:
  runtime_state(protocol p, reservation r, asio::any_io_executor ex) noexcept
      : protocol_(p), granted_(r), executor_(std::move(ex)) {}
  runtime_state(const runtime_state&) = delete;
  runtime_state& operator=(const runtime_state&) = delete;
  virtual ~runtime_state() = default;

  protocol proto() const noexcept { return protocol_; }
  const reservation& granted() const noexcept { return granted_; }
  /// The executor the reservation was acquired on.
  const asio::any_io_executor& executor() const noexcept { return executor_; }

  /// `w` hears of the end (once) while it lives.
  void watch(std::weak_ptr<reservation_watcher> w) {
    std::lock_guard lock(watch_mutex_);
    std::erase_if(watchers_, [](const auto& e) { return e.expired(); });
    watchers_.push_back(std::move(w));
  }
  /// The reservation ended: every watcher hears `why`.
  void ended(std::error_code why) noexcept {
    std::vector<std::weak_ptr<reservation_watcher>> told;
    {
      std::lock_guard lock(watch_mutex_);
      told.swap(watchers_);
    }
    for (auto& w : told) {
      if (auto alive = w.lock()) alive->reservation_ended(why);
    }
  }

private:
  protocol protocol_;
  reservation granted_;
  asio::any_io_executor executor_;
  std::mutex watch_mutex_;
  std::vector<std::weak_ptr<reservation_watcher>> watchers_;
};

using state_ptr = std::shared_ptr<runtime_state>;
// int on POSIX, SOCKET on Windows (where native_handle_type is a wrapper that converts to it).
using native_socket = asio::detail::socket_type;

using acquire_completion = completion<std::error_code, runtime_reservation>;
using status_completion = completion<std::error_code>;

// Library entry points (lib/src/core/dispatch.cpp), forwarding to the backend
// in force. Each validates its arguments first.
state_ptr acquire(const asio::any_io_executor& ex, protocol p, port_range r, std::error_code& ec);
void async_acquire(const asio::any_io_executor& ex, protocol p, port_range r, acquire_completion done);
void release(runtime_state& s, std::error_code& ec);
void async_release(state_ptr s, status_completion done);
void set_port_policy(runtime_state& s, port_policy policy, std::error_code& ec);

void associate(native_socket s, reservation_token t, std::error_code& ec);
void async_associate(const asio::any_io_executor& ex, native_socket s, reservation_token t,
                     status_completion done);
/// associate() for a socket whose protocol its Asio type tells.
void associate_as(native_socket s, protocol p, reservation_token t, std::error_code& ec);
/// `local` null: the any-address of the socket's family.
std::uint16_t bind(native_socket s, const asio::ip::address* local, std::error_code& ec);

/// bind() to a port free towards `peer` (TCP port sharing), from the least
/// used of `sources` of the socket's family (empty: its any-address).
std::uint16_t bind_towards(native_socket s, std::span<const asio::ip::address> sources, const asio::ip::address& peer,
                           std::uint16_t peer_port, std::error_code& ec);
/// Room left in `r`'s block towards `peer` from `sources` (empty: the any-address).
destination_headroom headroom(const runtime_state& r, std::span<const asio::ip::address> sources,
                              const asio::ip::address& peer, std::uint16_t peer_port);
/// Runs `job` on the library's pool for calls that may wait; the job's posts
/// to `ex` happen before `ex`'s context can be destroyed (its destructor waits
/// for the job). False (the job is dropped) if that context is shutting down.
bool run_blocking(const asio::any_io_executor& ex, std::function<void()> job);

/// capabilities().socket_reuse, looked up once.
bool socket_reuse_available();
/// Disconnects a connected TCP socket so that it can connect again from the
/// same port (Windows DisconnectEx with TF_REUSE_SOCKET).
/// A socket for the pool, opened so that child processes do not inherit it
/// (Linux SOCK_CLOEXEC, Windows WSA_FLAG_NO_HANDLE_INHERIT; Asio's own open
/// sets neither); closed again by close_native on failure.
native_socket open_uninheritable(bool ipv6, protocol p, std::error_code& ec);
void close_native(native_socket s) noexcept;

void async_disconnect_for_reuse(const asio::any_io_executor& ex, native_socket s, status_completion done);

/// Throws std::system_error for a non-zero `ec`, naming `what`.
void throw_if(const std::error_code& ec, const char* what);

} // namespace portres::detail

#endif
