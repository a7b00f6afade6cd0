#include "portres/persistent.hpp"

#include "portres/portres.hpp"
#include "support.hpp"

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <fstream>

#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace portres;

namespace {

// Runs `body` in a child process that dropped root for nobody (65534);
// returns the child's exit status (0: every expectation held).
template <class Body>
int as_nobody(Body body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(90);
    ::_exit(body());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
}

struct native_selected {
  native_selected() { select_backend(backend_kind::native); }
  ~native_selected() { select_backend(backend_kind::automatic); }
};

} // namespace

TEST_CASE("persistent lifecycle: create, lookup, list, associate, remove") {
  if (::geteuid() != 0) {
    PORTRES_SKIP("creating persistent reservations needs root");
  }
  asio::io_context io;
  native_selected native;
  const port_range block{50100, 10};
  const auto token = persistent::create(protocol::tcp, block);
  CHECK(token);
  CHECK(persistent::lookup(protocol::tcp, block) == token);
  const auto all = persistent::list(protocol::tcp);
  REQUIRE(all.size() == 1);
  CHECK(all[0] == reservation{block, token});
  CHECK(persistent::list(protocol::udp).empty());

  std::error_code ec;
  persistent::create(protocol::tcp, {50105, 10}, ec);
  CHECK(ec == condition::in_use); // overlaps
  persistent::create(protocol::tcp, port_range::wildcard(10), ec);
  CHECK(ec == error::wildcard_not_allowed);
  persistent::lookup(protocol::tcp, {50100, 9}, ec);
  CHECK(ec == error::unknown_token);

  {
    asio::ip::tcp::acceptor squatter(io, {asio::ip::address_v4::loopback(), 50205});
    persistent::create(protocol::tcp, {50200, 10}, ec);
    CHECK(ec == condition::in_use);
    CHECK(ec.message().find("50205") != std::string::npos);
  }

  // A runtime reservation cannot take persistent ports.
  acquire(io.get_executor(), protocol::tcp, {50109, 2}, ec);
  CHECK(ec == condition::in_use);

  asio::ip::tcp::socket socket(io, asio::ip::tcp::v4());
  associate(socket, token);
  CHECK(block.contains(portres::bind(socket)));

  const int child = as_nobody([&] {
    std::error_code e;
    persistent::create(protocol::tcp, {50300, 4}, e);
    if (e != condition::access_denied) return 1;
    persistent::remove(protocol::tcp, block, e);
    if (e != condition::access_denied) return 2;
    asio::io_context child_io;
    asio::ip::tcp::socket s(child_io, asio::ip::tcp::v4());
    associate(s, token, e);
    if (e != condition::access_denied) return 3;
    return 0;
  });
  CHECK(child == 0);

  persistent::remove(protocol::tcp, block);
  persistent::lookup(protocol::tcp, block, ec);
  CHECK(ec == error::unknown_token);
  persistent::remove(protocol::tcp, block, ec);
  CHECK(ec == error::unknown_token);
}

TEST_CASE("a corrupted store is reported, never trusted") {
  if (::geteuid() != 0) {
    PORTRES_SKIP("needs root");
  }
  const auto path = portres_test::scratch_dir() / "state" / "persistent";
  std::ofstream(path) << "tcp 50000 twenty\n";
  std::error_code ec;
  persistent::list(protocol::tcp, ec);
  CHECK(ec == error::malformed_state);
  persistent::create(protocol::tcp, {50000, 4}, ec);
  CHECK(ec == error::malformed_state);
  std::filesystem::remove(path);
  persistent::list(protocol::tcp, ec);
  CHECK_FALSE(ec);
}

TEST_CASE("apply writes persistent blocks back to the kernel") {
  if (!portres_test::in_private_netns()) {
    PORTRES_SKIP("needs root and a private network namespace");
  }
  const char* sysctl = "/proc/sys/net/ipv4/ip_local_reserved_ports";
  const auto token = persistent::create(protocol::udp, {33000, 8}); // inside the default ephemeral range
  CHECK(token);
  auto read = [&] {
    std::ifstream in(sysctl);
    std::string line;
    std::getline(in, line);
    return line;
  };
  CHECK(read() == "33000-33007");
  std::ofstream(sysctl) << "\n"; // as after a reboot
  CHECK(read().empty());
  persistent::apply();
  CHECK(read() == "33000-33007");
  persistent::remove(protocol::udp, {33000, 8});
  CHECK(read().empty());
}
