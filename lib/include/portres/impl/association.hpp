#ifndef PORTRES_IMPL_ASSOCIATION_HPP
#define PORTRES_IMPL_ASSOCIATION_HPP

#include <asio/any_io_executor.hpp>
#include <asio/post.hpp>

#include <asio/ip/tcp.hpp>
#include <asio/ip/udp.hpp>

#include <type_traits>
#include <utility>

namespace portres {
namespace detail {

struct initiate_associate {
  asio::any_io_executor executor;

  template <class Handler>
  void operator()(Handler&& handler, native_socket s, reservation_token t) const {
    detail::async_associate(executor, s, t, status_completion(std::forward<Handler>(handler), executor));
  }
};

} // namespace detail

template <class Socket, class CompletionToken>
auto async_associate(Socket& socket, reservation_token reservation, CompletionToken&& token) {
  // A closed socket has no native handle; the backend reports socket_not_open.
  const detail::native_socket handle =
      socket.is_open() ? detail::native_socket(socket.native_handle()) : detail::native_socket(asio::detail::invalid_socket);
  return asio::async_initiate<CompletionToken, void(std::error_code)>(
      detail::initiate_associate{socket.get_executor()}, token, handle, reservation);
}

template <class Socket>
void associate(Socket& socket, reservation_token reservation, std::error_code& ec) noexcept {
  if (!socket.is_open()) {
    ec = error::socket_not_open;
    return;
  }
  using proto_type = typename Socket::protocol_type;
  if constexpr (std::is_same_v<proto_type, asio::ip::tcp>) {
    detail::associate_as(socket.native_handle(), protocol::tcp, reservation, ec);
  } else if constexpr (std::is_same_v<proto_type, asio::ip::udp>) {
    detail::associate_as(socket.native_handle(), protocol::udp, reservation, ec);
  } else {
    detail::associate(socket.native_handle(), reservation, ec);
  }
}

template <class Socket>
void associate(Socket& socket, reservation_token reservation) {
  std::error_code ec;
  associate(socket, reservation, ec);
  detail::throw_if(ec, "portres::associate");
}

template <class Socket>
std::uint16_t bind(Socket& socket, const asio::ip::address& local_address, std::error_code& ec) noexcept {
  if (!socket.is_open()) {
    ec = error::socket_not_open;
    return 0;
  }
  return detail::bind(socket.native_handle(), &local_address, ec);
}

template <class Socket>
std::uint16_t bind(Socket& socket, std::error_code& ec) noexcept {
  if (!socket.is_open()) {
    ec = error::socket_not_open;
    return 0;
  }
  return detail::bind(socket.native_handle(), nullptr, ec);
}

template <class Socket>
std::uint16_t bind(Socket& socket, const asio::ip::address& local_address) {
  std::error_code ec;
  const auto port = bind(socket, local_address, ec);
  detail::throw_if(ec, "portres::bind");
  return port;
}

template <class Socket>
std::uint16_t bind(Socket& socket) {
  std::error_code ec;
  const auto port = bind(socket, ec);
  detail::throw_if(ec, "portres::bind");
  return port;
}

template <class Socket>
std::uint16_t bind(Socket& socket, std::span<const asio::ip::address> sources,
                   const typename Socket::endpoint_type& peer, std::error_code& ec) noexcept {
  if (!socket.is_open()) {
    ec = error::socket_not_open;
    return 0;
  }
  return detail::bind_towards(socket.native_handle(), sources, peer.address(), peer.port(), ec);
}

template <class Socket>
std::uint16_t bind(Socket& socket, const typename Socket::endpoint_type& peer, std::error_code& ec) noexcept {
  return bind(socket, std::span<const asio::ip::address>(), peer, ec);
}

template <class Socket>
std::uint16_t bind(Socket& socket, const asio::ip::address& local_address, const typename Socket::endpoint_type& peer,
                   std::error_code& ec) noexcept {
  return bind(socket, std::span<const asio::ip::address>(&local_address, 1), peer, ec);
}

template <class Socket>
std::uint16_t bind(Socket& socket, std::span<const asio::ip::address> sources,
                   const typename Socket::endpoint_type& peer) {
  std::error_code ec;
  const auto port = bind(socket, sources, peer, ec);
  detail::throw_if(ec, "portres::bind");
  return port;
}

template <class Socket>
std::uint16_t bind(Socket& socket, const typename Socket::endpoint_type& peer) {
  return bind(socket, std::span<const asio::ip::address>(), peer);
}

template <class Socket>
std::uint16_t bind(Socket& socket, const asio::ip::address& local_address, const typename Socket::endpoint_type& peer) {
  return bind(socket, std::span<const asio::ip::address>(&local_address, 1), peer);
}

} // namespace portres

#endif
