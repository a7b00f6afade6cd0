// Listing portresd's live grants (broker_client.hpp list, a page per
// request) and `portres show`: every grant, or a failure that says so, never
// a shorter list reported as complete.
#include "linux/broker_support.hpp"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <vector>

#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>

using namespace portres;
using namespace portres_test;
using portres::detail::blocking;
namespace wire = portres::detail::broker_wire;

namespace {

// Runs `command` and returns its standard output.
std::string output_of(const std::string& command) {
  std::string out;
  std::FILE* p = ::popen(command.c_str(), "r");
  REQUIRE(p != nullptr);
  char chunk[65536];
  std::size_t n;
  while ((n = std::fread(chunk, 1, sizeof chunk, p)) > 0) out.append(chunk, n);
  ::pclose(p);
  return out;
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

} // namespace

TEST_CASE("portres show --json lists every one of 12,000 live grants of the daemon") {
  if (const char* why = broker_skip_reason()) PORTRES_SKIP(why);
#if !defined(PORTRES_CLI)
  PORTRES_SKIP("the portres CLI is not built");
#else
  // 12,000 grants, the listing 24 pages (fewer under the sanitizers).
  const auto live = static_cast<unsigned>(race_scaled(12000));
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_max < live + 200) PORTRES_SKIP("the descriptor limit is below 12,200 (a grant is a connection)");
  limit.rlim_cur = limit.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &limit);
  // Below the ephemeral range: no kernel list write per grant.
  ::setenv("PORTRES_PLACEMENT", "10000-29999", 1);
  test_daemon daemon("listing");
  ::unsetenv("PORTRES_PLACEMENT");
  auto broker = daemon.client();
  std::vector<std::unique_ptr<portres::detail::registry::lease>> leases;
  for (unsigned i = 0; i < live; ++i) {
    std::error_code ec;
    port_range granted;
    leases.push_back(broker->grant(protocol::tcp, port_range(0, 1), reservation_token{0x1000 + i}, blocking::allowed,
                                   granted, ec));
    REQUIRE_MESSAGE(!ec, "grant " << i << ": " << ec);
  }
  std::error_code ec;
  CHECK(broker->list(ec).size() == live);
  CHECK(!ec);
  // A client slow to read still gets every entry (nothing is queued for it
  // beyond a page; it asks for the next).
  std::size_t slow = 0;
  {
    const int fd = portres::detail::broker_link::connect(daemon.name(), ec);
    REQUIRE(fd >= 0);
    wire::request r;
    r.kind = wire::op::list;
    const auto bytes = wire::encode(r);
    REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    for (int page = 0; page < 100; ++page) {
      const auto reply = portres::detail::broker_link::receive(fd, ec);
      if (ec) break;
      slow += reply.entries.size();
      if ((reply.flags & wire::flag_more) == 0) break;
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 0) == 0) { // nothing queued: ask for the next page
        r.token = reply.token;
        const auto next = wire::encode(r);
        (void)!::send(fd, next.data(), next.size(), MSG_NOSIGNAL);
      }
    }
    ::close(fd);
  }
  CHECK_MESSAGE(slow == live, "a slow reader got " << slow << " of " << live << " (" << ec.message() << ")");
  const auto json = output_of("PORTRES_BROKER=" + daemon.name() + " " + PORTRES_CLI + " show --json");
  const bool ok = json.rfind("{\"ok\":true", 0) == 0;
  const auto listed = count_of(json, "\"pid\":");
  CHECK_MESSAGE((ok ? listed == live : json.find("\"error\"") != std::string::npos),
                "ok " << ok << ", " << listed << " of " << live << " listed");
  CHECK(ok);
#endif
}
