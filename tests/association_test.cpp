#include "portres/association.hpp"

#include "conformance.hpp"
#include "portres/reservation.hpp"
#include "support.hpp"

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/udp.hpp>

#include <memory>
#include <set>
#include <vector>

using namespace portres;
using portres_test::backend_scope;

namespace {
template <class Socket>
Socket open_socket(asio::io_context& io) {
  Socket s(io);
  s.open(Socket::protocol_type::v4());
  return s;
}
} // namespace

TEST_CASE("20 sockets bind to 20 distinct ports of a 20-port block and the 21st is exhausted") {
  asio::io_context io;
  PORTRES_FOR_EACH_BACKEND(kind) {
    backend_scope scope(kind, io);
    auto r = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(20));
    const auto block = r.range();
    std::vector<asio::ip::tcp::socket> sockets;
    std::set<std::uint16_t> ports;
    for (int i = 0; i < 20; ++i) {
      sockets.push_back(open_socket<asio::ip::tcp::socket>(io));
      associate(sockets.back(), r.token());
      const auto port = portres::bind(sockets.back(), asio::ip::address_v4::loopback());
      CHECK(block.contains(port));
      CHECK(sockets.back().local_endpoint().port() == port);
      ports.insert(port);
    }
    CHECK(ports.size() == 20);

    auto extra = open_socket<asio::ip::tcp::socket>(io);
    associate(extra, r.token());
    std::error_code ec;
    portres::bind(extra, asio::ip::address_v4::loopback(), ec);
    CHECK(ec == condition::exhausted);
    CHECK(ec.message().find(std::to_string(block.first())) != std::string::npos);

    // Release, acquire again: a fresh block serves again.
    sockets.clear();
    extra.close();
    r.release();
    auto again = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(20));
    auto s = open_socket<asio::ip::tcp::socket>(io);
    associate(s, again.token());
    CHECK(again.range().contains(portres::bind(s)));
  }
}

TEST_CASE("a UDP socket's local port comes from its block") {
  asio::io_context io;
  PORTRES_FOR_EACH_BACKEND(kind) {
    backend_scope scope(kind, io);
    auto r = acquire(io.get_executor(), protocol::udp, port_range::wildcard(4));
    auto s = open_socket<asio::ip::udp::socket>(io);
    associate(s, r.token());
    const auto port = portres::bind(s, asio::ip::address_v4::loopback());
    CHECK(r.range().contains(port));
    CHECK(s.local_endpoint().port() == port);
  }
}

TEST_CASE("a port comes back to the block once its socket is closed") {
  asio::io_context io;
  PORTRES_FOR_EACH_BACKEND(kind) {
    backend_scope scope(kind, io);
    auto r = acquire(io.get_executor(), protocol::udp, port_range::wildcard(2));
    auto a = open_socket<asio::ip::udp::socket>(io);
    auto b = open_socket<asio::ip::udp::socket>(io);
    associate(a, r.token());
    associate(b, r.token());
    portres::bind(a);
    const auto port_b = portres::bind(b);
    b.close();
    // No bookkeeping by the caller: the next bind finds the freed port.
    for (int round = 0; round < 3; ++round) {
      auto c = open_socket<asio::ip::udp::socket>(io);
      associate(c, r.token());
      CHECK(portres::bind(c) == port_b);
    }
  }
}

TEST_CASE("association and bind errors are specific") {
  asio::io_context io;
  PORTRES_FOR_EACH_BACKEND(kind) {
    backend_scope scope(kind, io);
    auto tcp = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(4));
    std::error_code ec;

    auto unassociated = open_socket<asio::ip::tcp::socket>(io);
    portres::bind(unassociated, ec);
    CHECK(ec == error::not_associated);

#if !defined(_WIN32) // Windows reuses handle values, so a second association overwrites
    auto twice = open_socket<asio::ip::tcp::socket>(io);
    associate(twice, tcp.token());
    associate(twice, tcp.token(), ec);
    CHECK(ec == error::already_associated);
#endif

    auto bound = open_socket<asio::ip::tcp::socket>(io);
    bound.bind({asio::ip::address_v4::loopback(), 0});
    associate(bound, tcp.token(), ec);
    CHECK(ec == error::already_bound);

    asio::ip::tcp::socket closed(io);
    associate(closed, tcp.token(), ec);
    CHECK(ec == error::socket_not_open);
    portres::bind(closed, ec);
    CHECK(ec == error::socket_not_open);

    // Windows answers both with WSAEINVAL; the portable backends say which.
    const bool specific = portres_test::portable_port_choice();
    auto udp = open_socket<asio::ip::udp::socket>(io);
    associate(udp, tcp.token(), ec);
    CHECK(ec == condition::invalid_argument);
    if (specific) CHECK(ec == error::unsupported_socket);

    auto stranger = open_socket<asio::ip::tcp::socket>(io);
    associate(stranger, reservation_token{0x1234567890abcdefULL}, ec);
    CHECK(ec == condition::invalid_argument);
    if (specific) CHECK(ec == error::unknown_token);
    associate(stranger, reservation_token{}, ec);
    CHECK(ec == error::invalid_token);
    CHECK_THROWS_AS(associate(stranger, reservation_token{}), std::system_error);

    // Associated, then the reservation goes away before bind.
    auto orphan = open_socket<asio::ip::tcp::socket>(io);
    associate(orphan, tcp.token());
    tcp.release();
    portres::bind(orphan, ec);
    CHECK(ec == error::already_released);
  }
}

TEST_CASE("port policies: sequential, random and lru") {
  asio::io_context io;
  PORTRES_FOR_EACH_BACKEND(kind) {
    backend_scope scope(kind, io);
    if (!portres_test::portable_port_choice()) {
      std::printf("N/A for %s: the OS picks ports on native Windows\n", portres::to_string(kind));
      continue;
    }
    auto bind_many = [&](runtime_reservation& r, int n, std::vector<asio::ip::udp::socket>& keep) {
      std::vector<std::uint16_t> got;
      for (int i = 0; i < n; ++i) {
        keep.push_back(open_socket<asio::ip::udp::socket>(io));
        associate(keep.back(), r.token());
        got.push_back(portres::bind(keep.back()));
      }
      return got;
    };
    SUBCASE("sequential hands out ascending ports") {
      auto r = acquire(io.get_executor(), protocol::udp, port_range::wildcard(8));
      std::vector<asio::ip::udp::socket> keep;
      const auto got = bind_many(r, 8, keep);
      for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == r.range().first() + i);
    }
    SUBCASE("random spreads over the block") {
      auto r = acquire(io.get_executor(), protocol::udp, port_range::wildcard(64));
      r.set_port_policy(port_policy::random);
      std::vector<asio::ip::udp::socket> keep;
      const auto got = bind_many(r, 64, keep);
      CHECK(std::set<std::uint16_t>(got.begin(), got.end()).size() == 64);
      CHECK_FALSE(std::is_sorted(got.begin(), got.end())); // 1 in 64! by chance
    }
    SUBCASE("lru hands out the least recently used free port first") {
      auto r = acquire(io.get_executor(), protocol::udp, port_range::wildcard(4));
      r.set_port_policy(port_policy::lru);
      std::vector<asio::ip::udp::socket> keep;
      const auto first = bind_many(r, 4, keep);
      keep[2].close(); // third port handed out
      keep[0].close(); // first port handed out
      std::vector<asio::ip::udp::socket> more;
      const auto next = bind_many(r, 2, more);
      CHECK(next[0] == first[0]);
      CHECK(next[1] == first[2]);
    }
  }
}
