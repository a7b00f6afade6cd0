// Defect 1 of issue 14: the pool must associate the sockets it creates with
// the overlapped SIO_ASSOCIATE_PORT_RESERVATION on the completion port, never
// with the blocking IOCTL (which, the reference pages say, may block
// indefinitely) on the io_context's thread. The simulated provider records,
// per call, whether an OVERLAPPED came with it and which thread issued it.
#include "win/simulated_provider.hpp"

#include "portres/portres.hpp"
#include "portres/socket_pool.hpp"
#include "support.hpp"

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <string>
#include <thread>

#include <winsock2.h>
#include <mstcpip.h>

using namespace portres;
using portres_test::run_until;
using portres_test::native_selected;
using portres_test::simulated_provider;

namespace {

socket_pool<asio::ip::tcp>::options stock_of(std::size_t n) {
  socket_pool<asio::ip::tcp>::options o;
  o.low_water = n;
  o.high_water = n;
  return o;
}

struct associate_calls {
  int overlapped = 0;
  int blocking = 0;       // without OVERLAPPED, on any thread
  int blocking_on_io = 0; // without OVERLAPPED, on the thread running the io_context
};

associate_calls count_associates(const simulated_provider& provider, std::thread::id io_thread) {
  associate_calls n;
  for (const auto& call : provider.calls()) {
    if (call.code != SIO_ASSOCIATE_PORT_RESERVATION) continue;
    if (call.overlapped) {
      ++n.overlapped;
    } else {
      ++n.blocking;
      n.blocking_on_io += call.thread == io_thread;
    }
  }
  return n;
}
} // namespace

TEST_CASE("pool refill associates with overlapped IOCTLs only, never a blocking one on the io thread") {
  asio::io_context io;
  simulated_provider provider(io);
  native_selected native;
  auto block = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(8));
  const auto io_thread = std::this_thread::get_id(); // run_until runs `io` here
  socket_pool<asio::ip::tcp> pool(io.get_executor(), block, asio::ip::address_v4::loopback(), stock_of(4));
  REQUIRE(run_until(io, [&] { return pool.stats().ready == 4; }));
  // Taking sockets makes the pool refill again; a waiter goes through the same path.
  std::error_code ec;
  auto taken = pool.try_get(ec);
  REQUIRE_FALSE(ec);
  CHECK(block.range().contains(taken.port()));
  REQUIRE(run_until(io, [&] { return pool.stats().ready == 4; }));
  const auto n = count_associates(provider, io_thread);
  INFO("overlapped " << n.overlapped << ", blocking " << n.blocking << " (" << n.blocking_on_io << " on the io thread)");
  CHECK(n.overlapped >= 5);
  CHECK(n.blocking_on_io == 0);
  CHECK(n.blocking == 0);
}

TEST_CASE("pool refill waits for the associate's completion packet, as a pending IOCTL requires") {
  asio::io_context io;
  simulated_provider provider(io);
  native_selected native;
  auto block = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(8));
  // From now on every reservation IOCTL pends until the test delivers its packet.
  provider.set_mode(simulated_provider::completion_mode::pending);
  socket_pool<asio::ip::tcp> pool(io.get_executor(), block, asio::ip::address_v4::loopback(), stock_of(1));
  io.run_for(std::chrono::milliseconds(50));
  // A pool that associated synchronously would have stocked a socket by now.
  CHECK(pool.stats().ready == 0);
  std::size_t delivered = 0;
  REQUIRE(run_until(io, [&] {
    delivered += provider.deliver_pending();
    return pool.stats().ready == 1;
  }));
  CHECK(delivered >= 1);
  const auto n = count_associates(provider, std::this_thread::get_id());
  CHECK(n.blocking == 0);
  provider.set_mode(simulated_provider::completion_mode::immediate); // the refill after try_get
  std::error_code ec;
  auto s = pool.try_get(ec);
  REQUIRE_FALSE(ec);
  CHECK(block.range().contains(s.port()));
}
