// Associating sockets with a reservation, and binding them from it.
#ifndef PORTRES_ASSOCIATION_HPP
#define PORTRES_ASSOCIATION_HPP

#include "portres/detail/runtime_state.hpp"
#include "portres/error.hpp"
#include "portres/types.hpp"

#include <asio/async_result.hpp>
#include <asio/basic_socket.hpp>
#include <asio/ip/address.hpp>
#include <asio/ip/address_v4.hpp>
#include <asio/ip/address_v6.hpp>

#include <cstdint>
#include <system_error>

namespace portres {

/// Associates an open, unbound TCP or UDP socket with a reservation, so that
/// portres::bind takes its port from the reserved block
/// (SIO_ASSOCIATE_PORT_RESERVATION on Windows).
///
/// @param socket any Asio TCP or UDP socket, open and not yet bound.
/// @param reservation a runtime token of this process or a persistent token.
/// @param token completion token, signature `void(std::error_code)`.
///
/// Errors: error::socket_not_open, error::already_bound,
/// error::already_associated, error::unsupported_socket (protocol mismatch),
/// error::unknown_token, error::foreign_token (a runtime token of another
/// process), condition::access_denied (persistent token without privilege).
/// Cancellation: terminal, partial or total abort a pending native associate
/// (condition::aborted; the socket stays unassociated).
template <class Socket, class CompletionToken>
auto async_associate(Socket& socket, reservation_token reservation, CompletionToken&& token);

template <class Socket>
void associate(Socket& socket, reservation_token reservation);
template <class Socket>
void associate(Socket& socket, reservation_token reservation, std::error_code& ec) noexcept;

/// Binds an associated socket to a port of its reservation and returns the
/// port. On Windows the OS picks (bind to port 0); the portable backends
/// pick by the reservation's port_policy and bind explicitly, skipping ports
/// that an outside binder holds.
///
/// @param local_address address to bind; default: the any-address of the
///        socket's family.
/// Errors: error::not_associated, condition::exhausted (message names the block).
template <class Socket>
std::uint16_t bind(Socket& socket);
template <class Socket>
std::uint16_t bind(Socket& socket, const asio::ip::address& local_address);
template <class Socket>
std::uint16_t bind(Socket& socket, std::error_code& ec) noexcept;
template <class Socket>
std::uint16_t bind(Socket& socket, const asio::ip::address& local_address, std::error_code& ec) noexcept;

} // namespace portres

#include "portres/impl/association.hpp"

#endif
