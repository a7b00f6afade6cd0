// Runtime port reservations: acquire a block, hold it, release it.
#ifndef PORTRES_RESERVATION_HPP
#define PORTRES_RESERVATION_HPP

#include "portres/detail/runtime_state.hpp"
#include "portres/error.hpp"
#include "portres/types.hpp"

#include <asio/async_result.hpp>

#include <memory>
#include <system_error>

namespace portres {

/// A runtime reservation: move-only, released on destruction.
///
/// It owns what keeps the reservation alive: on Windows the socket on which
/// SIO_ACQUIRE_PORT_RESERVATION was issued (the reservation lives exactly as
/// long as that socket), on Linux an flocked registry file (so a crashed
/// process frees its blocks). Only the acquiring process may associate
/// sockets with its token.
class runtime_reservation {
public:
  runtime_reservation() noexcept = default;
  explicit runtime_reservation(detail::state_ptr state) noexcept
      : executor_(state ? state->executor() : asio::any_io_executor()), state_(std::move(state)) {}
  runtime_reservation(runtime_reservation&&) noexcept = default;
  runtime_reservation& operator=(runtime_reservation&& other) noexcept;
  ~runtime_reservation();

  /// The executor the reservation was acquired on (kept after release);
  /// async_release completes through it unless the handler has its own.
  const asio::any_io_executor& get_executor() const noexcept { return executor_; }

  /// True while this object holds a reservation (not moved from, not released).
  explicit operator bool() const noexcept { return state_ != nullptr; }

  /// @pre `*this` holds a reservation.
  portres::protocol protocol() const noexcept;
  /// The granted block: for a wildcard request, the block the OS or library chose.
  port_range range() const noexcept;
  reservation_token token() const noexcept;
  portres::reservation get() const noexcept;

  /// How portres::bind picks ports from this block (portable backends only;
  /// native Windows lets the OS pick). Default: sequential.
  void set_port_policy(port_policy policy);
  void set_port_policy(port_policy policy, std::error_code& ec) noexcept;

  /// Releases the reservation now. Afterwards `*this` is empty.
  /// Errors: error::already_released when empty.
  void release();
  void release(std::error_code& ec) noexcept;

  /// Releases asynchronously (SIO_RELEASE_PORT_RESERVATION on Windows).
  ///
  /// @param token completion token, signature `void(std::error_code)`.
  /// `*this` is empty as soon as the operation starts. The completion is
  /// always delivered through the handler's executor, never inline.
  ///
  /// Cancellation: terminal only (a release cannot be undone: the acquiring
  /// socket is closed in any case). A pending native release then completes
  /// with success, because the reservation is gone; partial and total
  /// cancellation are not supported and ignored, as Asio's rules say.
  template <class CompletionToken>
  auto async_release(CompletionToken&& token);

  /// The shared state, for the socket pool (it keeps the block alive).
  const detail::state_ptr& state() const noexcept { return state_; }

private:
  asio::any_io_executor executor_;
  detail::state_ptr state_;
};

/// Acquires a runtime reservation for a block of ports.
///
/// @param ex executor the reservation's socket (Windows) runs on and whose
///        context delivers the completion.
/// @param p tcp or udp.
/// @param range a specific block, or port_range::wildcard(count) for any free block.
/// @param token completion token, signature
///        `void(std::error_code, portres::runtime_reservation)`.
///
/// Errors: invalid ranges (condition::invalid_argument, detected before the
/// operation starts and delivered through the executor), condition::in_use
/// for a specific block with a port in use (the message names it),
/// condition::exhausted when no free block fits, condition::not_supported
/// where the backend cannot reserve.
///
/// Cancellation: per-operation cancellation (terminal, partial or total)
/// aborts a pending native acquire (condition::aborted, and no reservation
/// exists); a portable acquire completes without waiting and is not affected.
template <class Executor, class CompletionToken>
auto async_acquire(const Executor& ex, protocol p, port_range range, CompletionToken&& token);

/// Synchronous acquire; throws std::system_error.
template <class Executor>
runtime_reservation acquire(const Executor& ex, protocol p, port_range range);
/// Synchronous acquire; reports failure through `ec` and returns an empty reservation.
template <class Executor>
runtime_reservation acquire(const Executor& ex, protocol p, port_range range, std::error_code& ec);

} // namespace portres

#include "portres/impl/reservation.hpp"

#endif
