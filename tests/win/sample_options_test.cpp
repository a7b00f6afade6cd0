// The samples' socket options on Windows (samples/common/net.hpp): a listener
// holds its port exclusively, and pool client sockets get no SO_REUSEADDR,
// which on Windows would let a socket take a port another socket holds.
#include "common/net.hpp"

#include "support.hpp"

#include <asio/io_context.hpp>

#include <winsock2.h>

namespace {
int socket_option(SOCKET s, int name) {
  int value = -1;
  int size = sizeof value;
  REQUIRE(::getsockopt(s, SOL_SOCKET, name, reinterpret_cast<char*>(&value), &size) == 0);
  return value;
}
} // namespace

TEST_CASE("sample listeners take SO_EXCLUSIVEADDRUSE, never SO_REUSEADDR") {
  asio::io_context io;
  auto listener = samples::make_listener(io, {asio::ip::address_v4::loopback(), 0});
  CHECK(listener.local_endpoint().port() != 0);
  CHECK(socket_option(listener.native_handle(), SO_EXCLUSIVEADDRUSE) != 0);
  CHECK(socket_option(listener.native_handle(), SO_REUSEADDR) == 0);
}

TEST_CASE("sample pool client sockets get no SO_REUSEADDR on Windows") {
  asio::io_context io;
  asio::ip::tcp::socket client(io, asio::ip::tcp::v4());
  std::error_code ec;
  samples::configure_client_socket(client, ec);
  CHECK_FALSE(ec);
  CHECK(socket_option(client.native_handle(), SO_REUSEADDR) == 0);
}
