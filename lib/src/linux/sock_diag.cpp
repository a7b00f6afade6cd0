#include "linux/sock_diag.hpp"

#include "linux/state_files.hpp"

#include <cerrno>
#include <cstring>
#include <vector>

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace portres::detail::sock_diag {
namespace {

std::error_code last_error() { return {errno, std::system_category()}; }

// "first <= source port <= last", as inet_diag bytecode: a failed test jumps
// past the end (reject), passing both reaches the end exactly (accept).
struct port_filter {
  inet_diag_bc_op ge, ge_port, le, le_port;
};

std::error_code dump(int fd, int family, int proto, port_range range, port_bitmap& held) {
  struct request {
    nlmsghdr header;
    inet_diag_req_v2 body;
    rtattr attribute;
    port_filter filter;
  } req{};
  req.header.nlmsg_len = sizeof req;
  req.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.body.sdiag_family = static_cast<std::uint8_t>(family);
  req.body.sdiag_protocol = static_cast<std::uint8_t>(proto);
  req.body.idiag_states = ~0u; // every state, bound-inactive included where the kernel knows it
  req.attribute.rta_type = INET_DIAG_REQ_BYTECODE;
  req.attribute.rta_len = RTA_LENGTH(sizeof(port_filter));
  req.filter.ge = {INET_DIAG_BC_S_GE, 8, 16 + 4};
  req.filter.ge_port = {0, 0, static_cast<unsigned short>(range.first())};
  req.filter.le = {INET_DIAG_BC_S_LE, 8, 8 + 4};
  req.filter.le_port = {0, 0, static_cast<unsigned short>(range.last())};
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd, &req, sizeof req, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) return last_error();
  std::vector<char> buffer(32768);
  for (int rounds = 0; rounds < 100000; ++rounds) { // bounded: a dump ends with NLMSG_DONE
    const auto n = ::recv(fd, buffer.data(), buffer.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return last_error();
    auto left = static_cast<unsigned>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buffer.data()); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_type == NLMSG_DONE) return {};
      if (h->nlmsg_type == NLMSG_ERROR) {
        const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
        return {-e->error, std::system_category()};
      }
      const auto* msg = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
      const std::uint32_t port = ntohs(msg->id.idiag_sport);
      if (port >= range.first() && port <= range.last()) held.set_range(port, port);
    }
    if (n == 0) break;
  }
  return {};
}

} // namespace

std::optional<port_bitmap> held_ports(protocol p, port_range range, std::error_code& ec) {
  const int raw = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (raw < 0) {
    ec = last_error();
    return std::nullopt;
  }
  const linux_files::unique_fd fd(raw);
  port_bitmap held;
  const int proto = p == protocol::tcp ? IPPROTO_TCP : IPPROTO_UDP;
  for (const int family : {AF_INET, AF_INET6}) {
    if ((ec = dump(fd.get(), family, proto, range, held))) return std::nullopt;
  }
  return held;
}

} // namespace portres::detail::sock_diag
