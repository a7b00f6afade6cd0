// portres::bind towards a peer (association.hpp): a TCP port of the block
// carries one connection per destination for users who manage their own
// sockets, ports come back once their sockets are gone, several source
// addresses, and UDP ports stay one socket each.
#include "portres/portres.hpp"

#include "conformance.hpp"
#include "listeners.hpp"
#include "support.hpp"

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/udp.hpp>

#include <map>
#include <set>
#include <string>
#include <vector>

using namespace portres;
using namespace std::chrono_literals;
using portres_test::backend_scope;
using portres_test::listeners;
using portres_test::run_until;
using tcp = asio::ip::tcp;

namespace {
const asio::ip::address loopback = asio::ip::address_v4::loopback();

std::string text(const tcp::endpoint& e) { return e.address().to_string() + ":" + std::to_string(e.port()); }
} // namespace

TEST_CASE("bind towards a peer: a 200-port block holds 800 connections to 4 destinations") {
  REQUIRE(portres_test::ensure_descriptors(2500)); // 800 clients, 800 accepted
  asio::io_context io;
  PORTRES_FOR_EACH_BACKEND(kind) {
    backend_scope scope(kind, io);
    if (!capabilities().port_sharing) {
      // Exclusive ports (the OS picks them, or cannot share them safely):
      // each carries one connection whatever the peer, and the bind that
      // finds none free names the block and the peer.
      INFO(capabilities().port_sharing_reason);
      listeners peers(io, 2);
      auto r = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(2));
      std::vector<tcp::socket> held;
      std::set<std::uint16_t> ports;
      for (std::size_t d = 0; d < 2; ++d) {
        held.emplace_back(io, tcp::v4());
        associate(held.back(), r.token());
        ports.insert(portres::bind(held.back(), peers.at(d)));
      }
      CHECK(ports.size() == 2);
      tcp::socket third(io, tcp::v4());
      associate(third, r.token());
      std::error_code ec;
      portres::bind(third, peers.at(1), ec);
      CHECK(ec == condition::exhausted);
      CHECK(ec.message().find(text(peers.at(1))) != std::string::npos);
    } else {
      listeners peers(io, 4);
      auto r = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(200));
      std::vector<tcp::socket> clients;
      std::map<std::size_t, std::set<std::uint16_t>> ports;
      std::size_t failures = 0;
      for (std::size_t i = 0; i < 800; ++i) {
        const auto d = i % 4;
        tcp::socket s(io, tcp::v4());
        associate(s, r.token());
        std::error_code ec;
        const auto port = portres::bind(s, peers.at(d), ec);
        if (!ec) s.connect(peers.at(d), ec);
        if (ec) {
          ++failures;
          continue;
        }
        CHECK(r.range().contains(port));
        CHECK(ports[d].insert(port).second); // one connection per port and destination
        clients.push_back(std::move(s));
      }
      CHECK(failures == 0);
      CHECK(clients.size() >= 792);
      CHECK(run_until(io, [&] { return peers.accepted() == clients.size(); }, 30s));
      const auto room = headroom(r, peers.at(0).address(), peers.at(0).port());
      CHECK(room.live == 200);
      CHECK(room.free_ports == 0);

      // The 801st towards a destination: no port is free towards it...
      tcp::socket more(io, tcp::v4());
      associate(more, r.token());
      std::error_code ec;
      portres::bind(more, peers.at(0), ec);
      CHECK(ec == condition::exhausted);
      CHECK(ec.message().find(text(peers.at(0))) != std::string::npos);
      // ...until one of the sockets towards it is gone.
      const auto freed = clients.front().local_endpoint().port();
      peers.hang_up(freed); // the server closes first: the 4-tuple is free once the client closes too
      run_until(io, [] { return false; }, 10ms);
      portres_test::reset(clients.front());
      tcp::socket again(io, tcp::v4());
      associate(again, r.token());
      CHECK(portres::bind(again, peers.at(0), ec) == freed);
      CHECK_FALSE(ec);
      again.connect(peers.at(0), ec);
      CHECK_FALSE(ec);
    }
  }
}

TEST_CASE("bind towards a peer: the least used of several source addresses, one port per source and destination") {
  asio::io_context io;
  listeners peers(io, 1);
  auto r = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(2));
  if (!capabilities().port_sharing) PORTRES_SKIP(capabilities().port_sharing_reason.c_str()); // exclusive ports
  const std::vector<asio::ip::address> sources{loopback, asio::ip::make_address("127.0.0.2"),
                                               asio::ip::make_address("::1")};
  std::vector<tcp::socket> clients;
  std::map<std::string, std::set<std::uint16_t>> used;
  for (int i = 0; i < 4; ++i) {
    tcp::socket s(io, tcp::v4());
    associate(s, r.token());
    const auto port = portres::bind(s, sources, peers.at(0)); // IPv6 sources do not fit an IPv4 socket
    s.connect(peers.at(0));
    CHECK(used[s.local_endpoint().address().to_string()].insert(port).second);
    clients.push_back(std::move(s));
  }
  CHECK(used["127.0.0.1"].size() == 2);
  CHECK(used["127.0.0.2"].size() == 2);
  tcp::socket full(io, tcp::v4());
  associate(full, r.token());
  std::error_code ec;
  portres::bind(full, sources, peers.at(0), ec);
  CHECK(ec == condition::exhausted);
  tcp::socket v6only(io, tcp::v4());
  associate(v6only, r.token());
  const std::vector<asio::ip::address> v6{asio::ip::make_address("::1")};
  portres::bind(v6only, v6, peers.at(0), ec);
  CHECK(ec == std::errc::address_family_not_supported);
}

TEST_CASE("bind towards a peer: UDP ports stay one socket each") {
  asio::io_context io;
  asio::ip::udp::socket a(io, {loopback, 0}), b(io, {loopback, 0});
  auto r = acquire(io.get_executor(), protocol::udp, port_range::wildcard(2));
  std::vector<asio::ip::udp::socket> sockets;
  std::set<std::uint16_t> ports;
  for (int i = 0; i < 2; ++i) {
    sockets.emplace_back(io, asio::ip::udp::v4());
    associate(sockets.back(), r.token());
    ports.insert(portres::bind(sockets.back(), i ? a.local_endpoint() : b.local_endpoint()));
  }
  CHECK(ports.size() == 2);
  asio::ip::udp::socket third(io, asio::ip::udp::v4());
  associate(third, r.token());
  std::error_code ec;
  portres::bind(third, a.local_endpoint(), ec); // a destination no socket goes to yet: still no port
  CHECK(ec == condition::exhausted);
  const auto peer = a.local_endpoint().address().to_string() + ":" + std::to_string(a.local_endpoint().port());
  CHECK(ec.message().find("no port of block " + std::to_string(r.range().first())) != std::string::npos);
  CHECK(ec.message().find(peer) != std::string::npos); // which peer it was for
}

TEST_CASE("headroom: where ports stay one socket each (UDP), a free port counts once, whatever the sources") {
  asio::io_context io;
  asio::ip::udp::socket peer(io, {loopback, 0});
  const auto to = peer.local_endpoint();
  auto r = acquire(io.get_executor(), protocol::udp, port_range::wildcard(4));
  if (!portres_test::portable_port_choice()) PORTRES_SKIP("the OS picks the ports of this backend (headroom answers zero)");
  // A port nobody uses serves one socket from any source, not one per source.
  const std::vector<asio::ip::address> sources{loopback, asio::ip::make_address("127.0.0.2")};
  CHECK(headroom(r, to.address(), to.port(), sources).free_ports == 4);
  asio::ip::udp::socket one(io, asio::ip::udp::v4());
  associate(one, r.token());
  portres::bind(one, sources, to);
  CHECK(headroom(r, to.address(), to.port(), sources).free_ports == 3);
  CHECK(headroom(r, to.address(), to.port()).free_ports == 3);
}

TEST_CASE("capabilities: port sharing is reported with the backend in force") {
  asio::io_context io;
  PORTRES_FOR_EACH_BACKEND(kind) {
    backend_scope scope(kind, io);
    const auto caps = capabilities();
#ifdef _WIN32
    CHECK_FALSE(caps.port_sharing); // SO_REUSEADDR would let any socket bind over the port
#else
    CHECK(caps.port_sharing == portres_test::portable_port_choice());
#endif
    CHECK(caps.port_sharing == caps.port_sharing_reason.empty());
  }
}

TEST_CASE("bind towards a peer: sources are spread per peer, so no source fills up towards one peer first") {
  asio::io_context io;
  listeners peers(io, 2);
  auto r = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(4));
  if (!capabilities().port_sharing) PORTRES_SKIP(capabilities().port_sharing_reason.c_str()); // exclusive ports
  const std::vector<asio::ip::address> sources{loopback, asio::ip::make_address("127.0.0.2")};
  std::vector<tcp::socket> clients;
  std::map<std::pair<std::string, std::size_t>, int> per_pair;
  for (std::size_t i = 0; i < 8; ++i) { // peers in turn
    tcp::socket s(io, tcp::v4());
    associate(s, r.token());
    portres::bind(s, sources, peers.at(i % 2));
    s.connect(peers.at(i % 2));
    ++per_pair[{s.local_endpoint().address().to_string(), i % 2}];
    clients.push_back(std::move(s));
  }
  for (const auto& from : {"127.0.0.1", "127.0.0.2"}) {
    CHECK(per_pair[{from, 0}] == 2);
    CHECK(per_pair[{from, 1}] == 2);
  }
}
