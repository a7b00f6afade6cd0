// portresd, the machine-wide broker: grants, lifetime tied to the client's
// connection, the kernel list, unprivileged users, impostors, namespaces and
// hostile clients. Each test starts a private daemon in the test's private
// network namespace (root only; skipped visibly otherwise).
#include "linux/broker_support.hpp"

#include "linux/broker_protocol.hpp"
#include "linux/state_files.hpp"
#include "platform.hpp"
#include "portres/portres.hpp"

#include <asio/io_context.hpp>

#include <gsl/gsl>

#include <cstring>
#include <sstream>
#include <vector>

#include <grp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>

using namespace portres;
using namespace portres_test;
using portres::detail::blocking;
using portres::detail::broker_registry;

namespace {

bool kernel_reserves(std::uint32_t port) {
  const auto list = portres::detail::linux_files::parse_port_list(read_sysctl(reserved_ports_path));
  return list && list->test(port);
}

// A forked child reporting one line on a pipe, then waiting to be killed.
struct child {
  pid_t pid = -1;
  std::string said;

  template <class Body>
  explicit child(Body body) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(fds[0]);
      const std::string text = body() + "\n";
      (void)!::write(fds[1], text.data(), text.size());
      ::pause();
      ::_exit(0);
    }
    ::close(fds[1]);
    char c;
    while (::read(fds[0], &c, 1) == 1 && c != '\n') said += c;
    ::close(fds[0]);
  }
  ~child() { kill(); }
  void kill() {
    if (pid <= 0) return;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    pid = -1;
  }
};

std::string describe(const std::error_code& ec, port_range r) {
  std::ostringstream out;
  if (ec) {
    out << "error " << ec.message();
  } else {
    out << r.first() << ' ' << r.count();
  }
  return out.str();
}

bool drop_to_nobody() { return become_nobody(); }

bool bring_loopback_up() {
  const int s = ::socket(AF_INET, SOCK_DGRAM, 0);
  ifreq ifr{};
  std::snprintf(ifr.ifr_name, IFNAMSIZ, "lo");
  bool up = s >= 0 && ::ioctl(s, SIOCGIFFLAGS, &ifr) == 0;
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  up = up && ::ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
  if (s >= 0) ::close(s);
  return up;
}

} // namespace

TEST_CASE("broker: grants, refuses overlaps, lists owners, keeps the kernel list, releases at once") {
  if (const char* why = broker_skip_reason()) PORTRES_SKIP(why);
  // An entry someone else put in the kernel list survives every change.
  const auto eph = portres::detail::platform::ephemeral_range();
  const auto foreign_port = eph.first() + 7u;
  write_sysctl(reserved_ports_path, std::to_string(foreign_port));
  const auto clear = gsl::finally([] { write_sysctl(reserved_ports_path, ""); });
  test_daemon daemon;
  auto broker = daemon.client();
  const port_range inside(static_cast<std::uint16_t>(eph.first() + 100), 10);

  std::error_code ec;
  port_range granted;
  auto lease = broker->grant(protocol::tcp, inside, reservation_token{0x1111}, blocking::allowed, granted, ec);
  REQUIRE_MESSAGE(!ec, ec);
  CHECK(granted == inside);
  CHECK(kernel_reserves(inside.first()));
  CHECK(kernel_reserves(inside.last()));
  CHECK(kernel_reserves(foreign_port));

  // Overlapping specific block: refused. Wildcard: lands elsewhere.
  port_range other;
  auto refused = broker->grant(protocol::tcp, port_range(static_cast<std::uint16_t>(inside.first() + 5), 10),
                               reservation_token{0x2222}, blocking::allowed, other, ec);
  CHECK(ec == error::overlaps_reservation);
  CHECK(!refused);
  auto wildcard = broker->grant(protocol::tcp, port_range(0, 20), reservation_token{0x3333}, blocking::allowed, other, ec);
  REQUIRE_MESSAGE(!ec, ec);
  CHECK(!other.overlaps(inside));
  // The same token twice: the client draws another.
  broker->grant(protocol::udp, port_range(0, 1), reservation_token{0x3333}, blocking::allowed, other, ec);
  CHECK(ec == std::errc::file_exists);
  // Acquiring is never done on the I/O thread.
  broker->grant(protocol::tcp, port_range(0, 1), reservation_token{0x4444}, blocking::forbidden, other, ec);
  CHECK(ec == std::errc::operation_would_block);

  const auto listed = broker->list(ec);
  REQUIRE(!ec);
  REQUIRE(listed.size() == 2);
  for (const auto& e : listed) {
    CHECK(e.owner_uid == 0);
    CHECK(e.owner_pid == static_cast<std::uint32_t>(::getpid()));
    CHECK(e.token); // root sees tokens
  }
  CHECK(broker->classify_unknown(reservation_token{0x1111}, blocking::allowed) == error::foreign_token);
  CHECK(broker->classify_unknown(reservation_token{0x9999}, blocking::allowed) == error::unknown_token);

  broker->release(*lease, blocking::allowed, ec);
  CHECK(!ec);
  CHECK(!kernel_reserves(inside.first()));
  CHECK(kernel_reserves(foreign_port));
  broker->release(*lease, blocking::allowed, ec);
  CHECK(ec == error::already_released);
  // Free again at once for anyone.
  auto again = broker->grant(protocol::tcp, inside, reservation_token{0x5555}, blocking::allowed, granted, ec);
  CHECK(!ec);
  CHECK(daemon.alive());
}

TEST_CASE("broker: the library uses it when asked, says so, and classifies foreign tokens") {
  if (const char* why = broker_skip_reason()) PORTRES_SKIP(why);
  test_daemon daemon;
  ::setenv("PORTRES_BROKER", daemon.name().c_str(), 1);
  const auto caps = capabilities();
  if (caps.coordination.find(daemon.name()) == std::string::npos) {
    PORTRES_SKIP("this process chose its registry before the test (run the test case on its own, as ctest does)");
  }
  CHECK(caps.machine_wide);
  CHECK(caps.kernel_enforcement);
  CHECK(caps.coordination.find("kernel-enforced") != std::string::npos);

  child holder([&] {
    asio::io_context io;
    std::error_code ec;
    auto r = acquire(io.get_executor(), protocol::tcp, port_range(0, 4), ec);
    if (ec) return "error " + ec.message();
    auto* kept = new decltype(r)(std::move(r)); // held until the child is killed
    return std::to_string(kept->token().value());
  });
  // A fork child inherits the parent's chosen registry; its block is seen here.
  std::error_code ec;
  const auto live = list_runtime(ec);
  REQUIRE(!ec);
  INFO(holder.said);
  REQUIRE(live.size() == 1);
  CHECK(live[0].owner_pid == static_cast<std::uint32_t>(holder.pid));

  asio::io_context io;
  asio::ip::tcp::socket s(io, asio::ip::tcp::v4());
  const reservation_token foreign{std::stoull(holder.said)};
  associate(s, foreign, ec);
  CHECK(ec == error::foreign_token);
  holder.kill();
  CHECK(eventually([&] { return list_runtime(ec).empty(); }));
}

TEST_CASE("broker: an unprivileged user gets a kernel-enforced block that frees when it is killed") {
  if (const char* why = broker_skip_reason()) PORTRES_SKIP(why);
  // A narrow ephemeral range (this namespace only) that contains the block.
  const auto saved_range = read_sysctl(port_range_path);
  write_sysctl(port_range_path, "40000 40199");
  const auto restore = gsl::finally([&] { write_sysctl(port_range_path, saved_range); });
  test_daemon daemon;
  const port_range block(40000, 100);

  child user([&] {
    if (!drop_to_nobody()) return std::string("error setuid");
    std::string reason;
    auto broker = broker_registry::connect(daemon.name(), reason);
    if (!broker) return "error " + reason;
    std::error_code ec;
    port_range granted;
    auto lease = broker->grant(protocol::tcp, block, reservation_token{0xabcdef}, blocking::allowed, granted, ec);
    lease.release(); // held until killed
    return describe(ec, granted);
  });
  REQUIRE(user.said == "40000 100");
  CHECK(kernel_reserves(40000));

  // The daemon lists the user's block with its uid; root sees its token.
  std::error_code ec;
  auto listed = daemon.client()->list(ec);
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].owner_uid == 65534);
  CHECK(listed[0].token == reservation_token{0xabcdef});

  // Another unprivileged process sees every reservation and its owner, but
  // only tokens of its own uid: root's stays hidden.
  port_range root_block;
  auto root_lease = daemon.client()->grant(protocol::tcp, port_range(0, 2), reservation_token{0xf00d}, blocking::allowed,
                                           root_block, ec);
  REQUIRE(!ec);
  child viewer([&] {
    if (!drop_to_nobody()) return std::string("error setuid");
    std::string reason;
    auto broker = broker_registry::connect(daemon.name(), reason);
    if (!broker) return "error " + reason;
    std::error_code e;
    std::string seen;
    for (const auto& entry : broker->list(e)) {
      seen += "uid " + std::to_string(entry.owner_uid) + (entry.token ? " token " + to_string(entry.token) : " hidden") + ";";
    }
    return e ? "error " + e.message() : seen;
  });
  CHECK((viewer.said == "uid 65534 token 0x0000000000abcdef;uid 0 hidden;" ||
         viewer.said == "uid 0 hidden;uid 65534 token 0x0000000000abcdef;"));
  viewer.kill();
  root_lease.reset();

  // Another process binds port 0 until the range runs out: never into the block.
  child binder([] {
    int bound = 0, in_block = 0;
    for (int i = 0; i < 300; ++i) {
      const int s = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) break; // range exhausted
      socklen_t len = sizeof a;
      ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
      ++bound;
      if (ntohs(a.sin_port) < 40100) ++in_block;
    }
    return std::to_string(bound) + " " + std::to_string(in_block);
  });
  std::istringstream counts(binder.said);
  int bound = 0, in_block = -1;
  counts >> bound >> in_block;
  INFO(binder.said);
  CHECK(bound >= 90); // the other half of the range was usable
  CHECK(in_block == 0);
  binder.kill();

  user.kill();
  CHECK(eventually([] { return !kernel_reserves(40000); }));
  CHECK(eventually([&] { return daemon.client()->list(ec).empty(); }));
}

TEST_CASE("broker: a socket name held by a non-root process is refused") {
  if (const char* why = broker_skip_reason()) PORTRES_SKIP(why);
  const std::string name = "portres-test-squat-" + std::to_string(::getpid());
  squatter nobody(name);
  std::string reason;
  CHECK(!broker_registry::connect(name, reason));
  INFO(reason);
  CHECK(reason.find("not root") != std::string::npos);
  CHECK(reason.find("65534") != std::string::npos);
}

TEST_CASE("broker: two network namespaces keep their own daemons and kernel lists") {
  if (const char* why = broker_skip_reason()) PORTRES_SKIP(why);
  test_daemon daemon("ns");
  const auto eph = portres::detail::platform::ephemeral_range();
  const port_range block(static_cast<std::uint16_t>(eph.first() + 300), 5);
  std::error_code ec;
  port_range granted;
  auto broker = daemon.client();
  auto lease = broker->grant(protocol::tcp, block, reservation_token{0x77}, blocking::allowed, granted, ec);
  REQUIRE(!ec);

  // Another namespace: same socket name, its own daemon, the same block granted there.
  child other([&] {
    if (::unshare(CLONE_NEWNET) != 0 || !bring_loopback_up()) return std::string("error unshare");
    if (kernel_reserves(block.first())) return std::string("error: the new namespace sees our entry");
    std::string result;
    {
      // The same abstract name is free in the new namespace.
      const auto pid = ::fork();
      if (pid == 0) {
        ::execl(PORTRES_PORTRESD, "portresd", "--foreground", "--socket", daemon.name().c_str(),
                static_cast<char*>(nullptr));
        ::_exit(127);
      }
      std::shared_ptr<broker_registry> b;
      std::string reason;
      eventually([&] { return (b = broker_registry::connect(daemon.name(), reason)) != nullptr; });
      if (!b) {
        result = "error " + reason;
      } else {
        std::error_code e;
        port_range g;
        auto l = b->grant(protocol::tcp, block, reservation_token{0x77}, blocking::allowed, g, e);
        const bool reserved = kernel_reserves(block.first());
        if (l) b->release(*l, blocking::allowed, e);
        const bool freed = !kernel_reserves(block.first());
        result = describe(e, g) + (reserved ? " reserved" : " not-reserved") + (freed ? " freed" : " kept");
      }
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
    return result;
  });
  CHECK(other.said == std::to_string(block.first()) + " 5 reserved freed");
  CHECK(kernel_reserves(block.first())); // ours untouched by the other namespace
  broker->release(*lease, blocking::allowed, ec);
  CHECK(!kernel_reserves(block.first()));
}

TEST_CASE("broker: hostile clients get errors and cannot crash or hang the daemon") {
  if (const char* why = broker_skip_reason()) PORTRES_SKIP(why);
  test_daemon daemon("hostile");
  const auto connect_raw = [&] {
    std::error_code ec;
    const int fd = portres::detail::broker_link::connect(daemon.name(), ec);
    REQUIRE(fd >= 0);
    return fd;
  };
  // Garbage of several sizes, including far more than any request.
  for (const std::size_t size : {1u, 23u, 24u, 25u, 4096u, 65536u}) {
    const int fd = connect_raw();
    std::vector<std::uint8_t> junk(size, 0xa5);
    ::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL);
    std::error_code ec;
    const auto reply = portres::detail::broker_link::receive(fd, ec);
    CHECK(!ec);
    CHECK(reply.result == error::malformed_state);
    char c;
    CHECK(::recv(fd, &c, 1, 0) == 0); // then it hangs up
    ::close(fd);
  }
  // A valid request with a bad range or protocol value.
  {
    portres::detail::broker_wire::request bad;
    bad.kind = portres::detail::broker_wire::op::acquire;
    bad.first = 65000;
    bad.count = 1000;
    bad.token = 1;
    const int fd = connect_raw();
    std::error_code ec;
    const auto reply = portres::detail::broker_link::exchange(fd, bad, ec);
    CHECK(reply.result == error::range_past_end);
    ::close(fd);
  }
  // Many half-open connections that never speak, and a client that never reads.
  std::vector<int> silent;
  for (int i = 0; i < 300; ++i) silent.push_back(connect_raw());
  for (int i = 0; i < 50; ++i) {
    portres::detail::broker_wire::request list;
    list.kind = portres::detail::broker_wire::op::list;
    const auto bytes = portres::detail::broker_wire::encode(list);
    ::send(silent[0], bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  // A stream socket on the same name: the kernel refuses the type.
  const int stream = ::socket(AF_UNIX, SOCK_STREAM, 0);
  const auto address = portres::detail::broker_wire::abstract_address(daemon.name());
  REQUIRE(address);
  CHECK(::connect(stream, reinterpret_cast<const sockaddr*>(&address->addr), address->length) != 0);
  ::close(stream);

  // Still serving, promptly.
  const auto start = std::chrono::steady_clock::now();
  std::error_code ec;
  port_range granted;
  auto broker = daemon.client();
  auto lease = broker->grant(protocol::udp, port_range(0, 3), reservation_token{0x42}, blocking::allowed, granted, ec);
  CHECK(!ec);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
  CHECK(daemon.alive());
  for (const int fd : silent) ::close(fd);
}

TEST_CASE("broker: persistent blocks need root or the policy's group, and the policy caps ports per uid") {
  if (const char* why = broker_skip_reason()) PORTRES_SKIP(why);
  const auto policy = scratch_dir() / "portresd.policy";
  write_sysctl(policy.c_str(), "# test policy\nmax-ports 65534 10\nmax-connections * 64");
  test_daemon daemon("policy", policy.string());

  child user([&] {
    if (!drop_to_nobody()) return std::string("error setuid");
    std::string reason;
    auto broker = broker_registry::connect(daemon.name(), reason);
    if (!broker) return "error " + reason;
    std::error_code over, created, fits;
    port_range g;
    broker->grant(protocol::tcp, port_range(0, 11), reservation_token{0x51}, blocking::allowed, g, over);
    auto kept = broker->grant(protocol::tcp, port_range(0, 10), reservation_token{0x52}, blocking::allowed, g, fits);
    broker->persistent_create(protocol::tcp, port_range(62000, 4), created);
    const bool access = !broker->persistent_access();
    return std::string(over == linux_error::port_quota && over == condition::exhausted ? "quota" : over.message()) +
           " " + std::to_string(fits.value()) + " " +
           (created == error::privilege_required ? "denied" : created.message()) + (access ? " access" : " no-access");
  });
  CHECK(user.said == "quota 0 denied no-access");
  CHECK(make_error_code(linux_error::port_quota).message().find("max-ports") != std::string::npos);

  auto broker = daemon.client();
  std::error_code ec;
  const auto token = broker->persistent_create(protocol::tcp, port_range(62000, 4), ec);
  REQUIRE_MESSAGE(!ec, ec);
  CHECK(token);
  // Written by the daemon to the store; runtime grants now avoid it.
  const auto block = broker->persistent_block(protocol::tcp, token, blocking::allowed, ec);
  REQUIRE(block);
  CHECK(*block == port_range(62000, 4));
  port_range g;
  broker->grant(protocol::tcp, port_range(62002, 1), reservation_token{0x61}, blocking::allowed, g, ec);
  CHECK(ec == error::overlaps_reservation);
  broker->persistent_remove(protocol::tcp, port_range(62000, 4), ec);
  CHECK(!ec);
  broker->persistent_remove(protocol::tcp, port_range(62000, 4), ec);
  CHECK(ec == error::unknown_token);
}

TEST_CASE("broker: a block that would starve the ephemeral range is refused") {
  if (const char* why = broker_skip_reason()) PORTRES_SKIP(why);
  const auto eph = portres::detail::platform::ephemeral_range();
  test_daemon daemon;
  auto broker = daemon.client();
  std::error_code ec;
  port_range granted;
  // More than half of the ephemeral range (the default share that must stay free).
  const port_range greedy(eph.first(), eph.count() / 2 + 1);
  auto refused = broker->grant(protocol::tcp, greedy, reservation_token{0x5151}, blocking::allowed, granted, ec);
  CHECK(ec == error::ephemeral_starved);
  CHECK(!refused);
  CHECK(!kernel_reserves(greedy.first()));
  const port_range fair(eph.first(), eph.count() / 2);
  auto kept = broker->grant(protocol::tcp, fair, reservation_token{0x5252}, blocking::allowed, granted, ec);
  CHECK_MESSAGE(!ec, ec);
  CHECK(kernel_reserves(fair.last()));
}
