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
#include <span>
#include <system_error>

namespace portres {

class runtime_reservation;

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
/// Errors: error::not_associated, condition::exhausted (message names the block);
/// the OS error (e.g. too_many_files_open) where a block that ran dry could not
/// be checked for ports that came back.
template <class Socket>
std::uint16_t bind(Socket& socket);
template <class Socket>
std::uint16_t bind(Socket& socket, const asio::ip::address& local_address);
template <class Socket>
std::uint16_t bind(Socket& socket, std::error_code& ec) noexcept;
template <class Socket>
std::uint16_t bind(Socket& socket, const asio::ip::address& local_address, std::error_code& ec) noexcept;

/// Binds an associated socket to a port of its reservation free towards
/// `peer`, for a connect to `peer` right after, and returns the port.
///
/// TCP, where capabilities().port_sharing: a port carries one connection
/// per destination (source address, peer address and port), so a block of
/// N ports serves up to N connections towards each peer, as kernel
/// autobind does. The library lets the port be shared by its user's sockets
/// towards other peers (Linux: SO_REUSEPORT) and chooses a port that no
/// socket bound this way uses towards `peer` from the same source; it notices
/// a socket is gone when the peer's ports run out (it checks the sockets it
/// bound). Mixing the any-address with specific source addresses towards the
/// same peer can collide: connect then fails with EADDRNOTAVAIL. Elsewhere
/// (UDP, which keeps one socket per port; Windows, where the engine lets the
/// OS pick the port and the fallback backend keeps ports exclusive) it binds
/// as bind(socket, local_address) does, to the first source of the socket's
/// family, and running out names the peer too.
///
/// @param sources local addresses to choose from, the least used (live
///        connections of the block) first where ports are shared, else the
///        first; only those of the socket's family count. Default: the
///        any-address of the socket's family.
/// Errors: as bind(socket); condition::exhausted naming the block and the
/// peer when no port is free towards it; std::errc::address_family_not_supported
/// when no source has the socket's family.
template <class Socket>
std::uint16_t bind(Socket& socket, const typename Socket::endpoint_type& peer);
template <class Socket>
std::uint16_t bind(Socket& socket, const typename Socket::endpoint_type& peer, std::error_code& ec) noexcept;
template <class Socket>
std::uint16_t bind(Socket& socket, const asio::ip::address& local_address, const typename Socket::endpoint_type& peer);
template <class Socket>
std::uint16_t bind(Socket& socket, const asio::ip::address& local_address, const typename Socket::endpoint_type& peer,
                   std::error_code& ec) noexcept;
template <class Socket>
std::uint16_t bind(Socket& socket, std::span<const asio::ip::address> sources,
                   const typename Socket::endpoint_type& peer);
template <class Socket>
std::uint16_t bind(Socket& socket, std::span<const asio::ip::address> sources,
                   const typename Socket::endpoint_type& peer, std::error_code& ec) noexcept;

/// Room left in `reservation`'s block towards `peer` from `sources`
/// (default: the any-address), as bind towards a peer and pools count it:
/// ports still free towards it, and connections recorded towards it.
/// The Windows engine (the OS picks ports) answers zero.
destination_headroom headroom(const runtime_reservation& reservation, const asio::ip::address& peer,
                              std::uint16_t peer_port, std::span<const asio::ip::address> sources = {});

} // namespace portres

#include "portres/impl/association.hpp"

#endif
