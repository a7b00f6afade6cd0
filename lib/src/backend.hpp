// The private contract every backend implements. The public entry points
// (core/dispatch.cpp) validate arguments and forward here.
#ifndef PORTRES_SRC_BACKEND_HPP
#define PORTRES_SRC_BACKEND_HPP

#include "portres/backend.hpp"
#include "portres/detail/runtime_state.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/thread_pool.hpp>

#include <chrono>
#include <memory>
#include <span>

namespace portres::detail {

/// Whether a call may wait (flock, sysctl writes, file reads). async_acquire
/// and async_release always run on the blocking pool; async_associate first
/// tries `forbidden` on the caller's thread (memory only: a live runtime
/// token), and a backend that would have to read or wait fails with
/// std::errc::operation_would_block and the call is re-run with `allowed` on
/// the blocking pool, never on the io_context's thread.
enum class blocking { allowed, forbidden };

class backend;

/// Every backend's runtime state derives from this, so a reservation is
/// always released by the backend that granted it.
class owned_state : public runtime_state {
public:
  owned_state(backend& owner, protocol p, reservation r, asio::any_io_executor ex) noexcept
      : runtime_state(p, r, std::move(ex)), owner_(owner) {}
  backend& owner() const noexcept { return owner_; }

private:
  backend& owner_;
};

class backend {
public:
  virtual ~backend() = default;
  virtual backend_kind kind() const noexcept = 0;

  // Arguments are validated before these are called.
  virtual state_ptr acquire(const asio::any_io_executor& ex, protocol p, port_range r, blocking b,
                            std::error_code& ec) = 0;
  virtual void release(owned_state& s, blocking b, std::error_code& ec) = 0;
  virtual void set_port_policy(owned_state& s, port_policy policy, std::error_code& ec) = 0;
  virtual void associate(native_socket s, reservation_token t, blocking b, std::error_code& ec) = 0;
  /// associate() for a socket whose protocol the caller knows from its type
  /// (fewer questions to the OS). Default: associate().
  virtual void associate_as(native_socket s, protocol p, reservation_token t, blocking b, std::error_code& ec) {
    (void)p;
    associate(s, t, b, ec);
  }
  virtual std::uint16_t bind(native_socket s, const asio::ip::address* local, std::error_code& ec) = 0;

  /// The pool's fast path: `s` was just opened by the library for `p` (the
  /// family of `local`); associate and bind it in one step without asking
  /// the OS what it is. condition::not_supported: this backend has none (the
  /// pool then uses async_associate and bind).
  virtual std::uint16_t bind_fresh(native_socket s, protocol p, reservation_token t, const asio::ip::address& local,
                                   blocking b, std::error_code& ec);

  // Port sharing (TCP): a port carries one connection per destination.
  // Backends where the OS picks the port at bind time (the Windows engine)
  // keep ports exclusive: the defaults below.

  /// Whether ports of `p` blocks are shared per destination.
  virtual bool shares_ports(protocol p) const noexcept;
  /// bind() of an associated socket to a port free towards the peer, from
  /// the least used of `sources` (of the socket's family; empty: its
  /// any-address); the use is tracked by the socket's key until it is gone.
  /// Default: an exclusive bind() to the first source.
  virtual std::uint16_t bind_towards(native_socket s, std::span<const asio::ip::address> sources,
                                     const asio::ip::address& peer, std::uint16_t peer_port, std::error_code& ec);
  /// The pool's form: `s` was just opened by the library (the family of
  /// `sources`); the use is the pool's until port_returned. `source` gets the
  /// address bound.
  virtual std::uint16_t bind_fresh_towards(native_socket s, reservation_token t,
                                           std::span<const asio::ip::address> sources, const asio::ip::address& peer,
                                           std::uint16_t peer_port, blocking b, asio::ip::address& source,
                                           std::error_code& ec);
  /// A port a pool holds exclusively (a ready socket) now carries its
  /// connection towards `d`.
  virtual void share_port(reservation_token t, std::uint16_t port, const destination& d);
  /// A pool closed a socket bound to `port` of `t`'s block (with a connection
  /// towards `*towards` when not null): the port is free again (towards it),
  /// resting until `ready_at` while others are free. Default: nothing (the OS
  /// picks ports).
  virtual void port_returned(reservation_token t, std::uint16_t port, const destination* towards,
                             std::chrono::steady_clock::time_point ready_at);
  /// A pool handed socket `s` to its user for good: its port is no longer the
  /// pool's to return; it comes back once the socket is gone.
  virtual void port_released(reservation_token t, std::uint16_t port, const destination* towards, native_socket s);
  virtual destination_headroom headroom(reservation_token t, std::span<const asio::ip::address> sources,
                                        const asio::ip::address& peer, std::uint16_t peer_port);
  /// Ports of `t`'s block free for a socket of its own, as far as known
  /// without asking the OS (a pool stocks only then). Default: unknown (max).
  virtual std::size_t free_ports(reservation_token t);
  /// The address a pool binds its sockets to for the source `local` (its
  /// family is the sockets' family). Default: `local`. Windows' engine: pool
  /// sockets are dual-mode IPv6, so an IPv4 address in its v4-mapped form.
  virtual asio::ip::address pool_address(const asio::ip::address& local) const { return local; }
  /// The reservation's state: error::reservation_released once released,
  /// what its lease reports once lost (Linux: linux_error::reservation_lost);
  /// empty while alive.
  virtual std::error_code status(owned_state& s);

  // Asynchronous forms. The defaults run the synchronous call as described
  // at `blocking`; the Windows engine overrides them with overlapped I/O.
  virtual void async_acquire(const asio::any_io_executor& ex, protocol p, port_range r, acquire_completion done);
  virtual void async_release(std::shared_ptr<owned_state> s, status_completion done);
  virtual void async_associate(const asio::any_io_executor& ex, native_socket s, reservation_token t,
                               status_completion done);
};

/// The OS backend (linux/ or win/), or null (with `reason`) when it cannot
/// even be set up here. Explicitly selecting it works where the OS merely
/// answers "not supported" (Wine), so that path can be exercised.
backend* native_backend(std::string& reason);
/// The portable backend (core/): library-chosen blocks, in-process coordination.
backend& fallback_backend();

/// The backend in force (core/dispatch.cpp).
backend& active();
/// The backend that granted `r` (the one in force for a persistent token: null).
backend& owner_of(const runtime_state* r);
/// Tests: puts `b` in force (null: back to the selection); returns what was.
backend* replace_active(backend* b);

/// The library's pool for calls that may wait (two threads).
asio::thread_pool& blocking_pool();

/// What this OS supports (linux/ or win/).
capability_report os_capabilities();

} // namespace portres::detail

#endif
