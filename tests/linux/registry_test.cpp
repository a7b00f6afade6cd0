// The Linux backend across processes and with the kernel: no overlap between
// processes, crash recovery, tokens bound to their process, and
// ip_local_reserved_ports kept in step (inside the test's private network
// namespace only).
#include "portres/portres.hpp"

#include "support.hpp"

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <fstream>
#include <sstream>
#include <string>

#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

using namespace portres;
using portres_test::read_sysctl;
using portres_test::write_sysctl;

namespace {

constexpr const char* reserved_ports = "/proc/sys/net/ipv4/ip_local_reserved_ports";

// A child process that acquires `request` with the native backend, reports
// "first count token" on a pipe, then waits to be killed.
struct holder {
  pid_t pid = -1;
  port_range range;
  reservation_token token;

  explicit holder(port_range request) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(fds[0]);
      asio::io_context io;
      std::error_code ec;
      select_backend(backend_kind::native);
      auto r = acquire(io.get_executor(), protocol::tcp, request, ec);
      std::ostringstream msg;
      if (ec) {
        msg << "error " << ec.message();
      } else {
        msg << r.range().first() << ' ' << r.range().count() << ' ' << r.token().value();
      }
      const auto text = msg.str() + "\n";
      (void)!::write(fds[1], text.data(), text.size());
      ::pause();
      ::_exit(0);
    }
    ::close(fds[1]);
    std::string text;
    char c;
    while (::read(fds[0], &c, 1) == 1 && c != '\n') text += c;
    ::close(fds[0]);
    std::istringstream in(text);
    unsigned first = 0, count = 0;
    std::uint64_t value = 0;
    in >> first >> count >> value;
    INFO("child said: " << text);
    REQUIRE(count > 0);
    range = port_range(static_cast<std::uint16_t>(first), count);
    token = reservation_token{value};
  }

  void kill() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      pid = -1;
    }
  }

  ~holder() { kill(); }
};

struct native_selected {
  native_selected() { select_backend(backend_kind::native); }
  ~native_selected() { select_backend(backend_kind::automatic); }
};

} // namespace

TEST_CASE("blocks of two processes never overlap, and a token is bound to its process") {
  asio::io_context io;
  native_selected native;
  holder other(port_range::wildcard(100));
  auto mine = acquire(io.get_executor(), protocol::tcp, port_range::wildcard(100));
  CHECK_FALSE(mine.range().overlaps(other.range));

  std::error_code ec;
  acquire(io.get_executor(), protocol::tcp, other.range, ec);
  CHECK(ec == condition::in_use);

  asio::ip::tcp::socket socket(io, asio::ip::tcp::v4());
  associate(socket, other.token, ec);
  CHECK(ec == error::foreign_token);
}

TEST_CASE("a SIGKILLed holder's block is free again at once") {
  asio::io_context io;
  native_selected native;
  holder victim(port_range::wildcard(50));
  const auto block = victim.range;
  std::error_code ec;
  acquire(io.get_executor(), protocol::tcp, block, ec);
  CHECK(ec == condition::in_use);
  victim.kill();
  auto r = acquire(io.get_executor(), protocol::tcp, block, ec);
  CHECK_FALSE(ec);
  CHECK(r.range() == block);
}

TEST_CASE("kernel enforcement: blocks in the ephemeral range go to ip_local_reserved_ports") {
  if (!portres_test::in_private_netns()) {
    PORTRES_SKIP("needs root and a private network namespace");
  }
  asio::io_context io;
  native_selected native;
  REQUIRE(capabilities().kernel_enforcement);
  const auto original_range = read_sysctl("/proc/sys/net/ipv4/ip_local_port_range");
  write_sysctl("/proc/sys/net/ipv4/ip_local_port_range", "40000 40009");
  write_sysctl(reserved_ports, "12345,45000-45010"); // entries portres did not add

  SUBCASE("automatic allocation skips a reserved block; foreign entries survive") {
    auto r = acquire(io.get_executor(), protocol::tcp, port_range{40000, 5});
    CHECK(read_sysctl(reserved_ports) == "12345,40000-40004,45000-45010");
    std::vector<asio::ip::tcp::socket> sockets;
    for (int i = 0; i < 5; ++i) {
      sockets.emplace_back(io, asio::ip::tcp::v4());
      sockets.back().bind({asio::ip::address_v4::loopback(), 0});
      const auto port = sockets.back().local_endpoint().port();
      CHECK(port >= 40005);
      CHECK(port <= 40009);
    }
    asio::ip::tcp::socket one_more(io, asio::ip::tcp::v4());
    std::error_code ec;
    one_more.bind({asio::ip::address_v4::loopback(), 0}, ec);
    CHECK(ec); // the kernel has nothing left outside the reservation
    r.release();
    CHECK(read_sysctl(reserved_ports) == "12345,45000-45010");
  }

  SUBCASE("a crashed holder's kernel entries leave at the next registry operation") {
    {
      holder victim(port_range{40002, 3});
      CHECK(read_sysctl(reserved_ports) == "12345,40002-40004,45000-45010");
      victim.kill();
    }
    CHECK(read_sysctl(reserved_ports) == "12345,40002-40004,45000-45010"); // nobody has looked yet
    auto r = acquire(io.get_executor(), protocol::udp, port_range::wildcard(1));
    CHECK(read_sysctl(reserved_ports) == "12345,45000-45010");
  }

  write_sysctl(reserved_ports, "");
  write_sysctl("/proc/sys/net/ipv4/ip_local_port_range", original_range);
}
