// A pool's sockets never share a port of the block with another user's
// socket: SO_REUSEADDR sockets of different users may share a port on Linux,
// so the pool must not rely on it (the pool's shared ports are its own user's).
#include "portres/portres.hpp"

#include "conformance.hpp"
#include "linux/nobody_process.hpp"
#include "listeners.hpp"
#include "support.hpp"

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

using namespace portres;
using namespace std::chrono_literals;
using portres_test::listeners;
using portres_test::run_until;
using tcp = asio::ip::tcp;

TEST_CASE("pool: a port another user holds with SO_REUSEADDR is never shared, by get or connect") {
  if (::geteuid() != 0) PORTRES_SKIP("needs root to run a socket as another user (nobody)");
  asio::io_context io;
  listeners peers(io, 1);
  const auto loopback = asio::ip::address(asio::ip::address_v4::loopback());
  auto r = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(1));
  if (!portres_test::portable_port_choice()) PORTRES_SKIP("the OS picks the ports of this backend");
  const auto other = portres_test::nobody_holding(r.range().first());
  REQUIRE(other.ready());
  socket_pool<tcp>::options o;
  o.low_water = 0;
  o.high_water = 0;
  socket_pool<tcp> pool(io.get_executor(), r, loopback, o);
  std::error_code got, connected;
  bool got_done = false, connected_done = false;
  std::uint16_t got_port = 0, connected_port = 0;
  pool.async_get([&](std::error_code ec, pooled_socket<tcp> s) {
    got = ec;
    if (!ec) got_port = s.socket().local_endpoint().port();
    got_done = true;
  });
  pool.async_connect(peers.at(0), [&](std::error_code ec, pooled_socket<tcp> s) {
    connected = ec;
    if (!ec) connected_port = s.socket().local_endpoint().port();
    connected_done = true;
  });
  CHECK(run_until(io, [&] { return got_done && connected_done; }, 2s));
  INFO("get: " << got.message() << " on port " << got_port << "; connect: " << connected.message() << " on port "
               << connected_port);
  CHECK(got == condition::exhausted);
  CHECK(connected == condition::exhausted);
}
