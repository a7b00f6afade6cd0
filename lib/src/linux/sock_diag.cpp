#include "linux/sock_diag.hpp"

#include "linux/state_files.hpp"

#include <gsl/gsl>

#include <cerrno>
#include <cstring>

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

// "first <= source port <= last" as inet_diag bytecode: a true test steps to
// the next op, a false one jumps past the end (rejects); reaching the end accepts.
struct port_filter {
  inet_diag_bc_op ge_op, ge_port, le_op, le_port;
};

port_filter make_filter(port_range range) {
  port_filter f{};
  f.ge_op = {INET_DIAG_BC_S_GE, 8, 20};
  f.ge_port = {0, 0, range.first()};
  f.le_op = {INET_DIAG_BC_S_LE, 8, 12};
  f.le_port = {0, 0, gsl::narrow_cast<std::uint16_t>(range.last())};
  return f;
}

struct request {
  nlmsghdr header;
  inet_diag_req_v2 body;
  rtattr filter_attr;
  port_filter filter;
};

std::error_code dump(int fd, std::uint8_t family, std::uint8_t proto, port_range range, port_bitmap& held) {
  request req{};
  req.header.nlmsg_len = sizeof req;
  req.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.header.nlmsg_seq = 1;
  req.body.sdiag_family = family;
  req.body.sdiag_protocol = proto;
  req.body.idiag_states = ~0u; // every state, bound-inactive included where the kernel knows it
  req.filter_attr.rta_len = sizeof req.filter_attr + sizeof req.filter;
  req.filter_attr.rta_type = INET_DIAG_REQ_BYTECODE;
  req.filter = make_filter(range);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd, &req, sizeof req, 0, reinterpret_cast<const sockaddr*>(&kernel), sizeof kernel) < 0) {
    return last_error();
  }
  alignas(nlmsghdr) char buffer[32768];
  while (true) {
    const auto n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return last_error();
    if (n == 0) return std::make_error_code(std::errc::connection_aborted);
    auto remaining = static_cast<unsigned>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buffer); NLMSG_OK(h, remaining); h = NLMSG_NEXT(h, remaining)) {
      if (h->nlmsg_type == NLMSG_DONE) return {};
      if (h->nlmsg_type == NLMSG_ERROR) {
        const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
        return {err->error < 0 ? -err->error : EPROTO, std::system_category()};
      }
      if (h->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) return std::make_error_code(std::errc::bad_message);
      const auto* msg = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
      const std::uint16_t port = ntohs(msg->id.idiag_sport);
      if (range.contains(port)) held.set(port); // the kernel filtered already; never trust blindly
    }
  }
}

} // namespace

std::error_code mark_held(protocol p, port_range range, port_bitmap& held) {
  linux_files::unique_fd fd(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!fd) return last_error();
  const std::uint8_t proto = p == protocol::tcp ? IPPROTO_TCP : IPPROTO_UDP;
  for (const std::uint8_t family : {std::uint8_t{AF_INET}, std::uint8_t{AF_INET6}}) {
    if (auto ec = dump(fd.get(), family, proto, range, held)) {
      if (family == AF_INET6 && ec == std::errc::no_such_file_or_directory) continue; // no IPv6 here
      return ec;
    }
  }
  return {};
}

} // namespace portres::detail::sock_diag
