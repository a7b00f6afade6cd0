#include "linux/broker_client.hpp"

#include "linux/broker_presence.hpp"
#include "linux/reserved_ports.hpp"
#include "linux/state_files.hpp"
#include "portres/error.hpp"
#include "portres/linux_error.hpp"

#include <gsl/gsl>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fcntl.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace portres::detail {
namespace broker_link {
namespace {

// A daemon that stops answering must not hang its clients for ever.
constexpr timeval reply_timeout{10, 0};
// How long a full backlog (and a send) may wait: a busy daemon drains it in
// far less. Root waits 20 ms, then uses its own socket.
constexpr timeval busy_patience{1, 0};
constexpr timeval root_patience{0, 20000};

std::error_code last_error() { return {errno, std::system_category()}; }

} // namespace

namespace {

// Connects `fd` to `address` (shown as `shown`) and checks that the peer is
// root. With O_NONBLOCK a full backlog answers at once; without, it is
// waited for at most the send timeout (the kernel bounds a connect by it).
bool connect_to(int fd, const broker_wire::socket_address& address, const std::string& shown, std::error_code& ec,
                std::string* why) {
  while (::connect(fd, reinterpret_cast<const sockaddr*>(&address.addr), address.length) != 0) {
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      ec = linux_error::broker_busy;
      if (why) *why = shown + " does not take connections (its backlog is full)";
    } else {
      ec = last_error();
      if (why) *why = "no broker answers on " + shown + " (" + ec.message() + ")";
    }
    return false;
  }
  ucred peer{};
  socklen_t peer_len = sizeof peer;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &peer_len) != 0) {
    ec = last_error();
    if (why) *why = "SO_PEERCRED: " + ec.message();
    return false;
  }
  if (peer.uid != 0) {
    // Anyone can bind an abstract name; only root's listener is the broker.
    ec = error::backend_unavailable;
    if (why) *why = "portresd name " + shown + " held by non-root uid " + std::to_string(peer.uid) + " (pid " +
                    std::to_string(peer.pid) + ", impostor): not root, refused";
    return false;
  }
  ec.clear();
  return true;
}

} // namespace

int connect(const std::string& name, std::error_code& ec, std::string* why, bool retry_busy) {
  ec.clear();
  const auto address = broker_wire::abstract_address(name);
  if (!address) {
    ec = std::make_error_code(std::errc::invalid_argument);
    if (why) *why = "broker socket name '" + name + "' is empty or too long";
    return -1;
  }
  // Every wait on this socket is bounded: a listener that never accepts
  // (anyone may bind an abstract name) holds a connect for at most the send
  // timeout, or not at all without `retry_busy`.
  const bool root = ::geteuid() == 0;
  linux_files::unique_fd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | (retry_busy ? 0 : SOCK_NONBLOCK), 0));
  if (!fd) {
    ec = last_error();
    if (why) *why = "socket: " + ec.message();
    return -1;
  }
  if (retry_busy) {
    // Root has a way round a full backlog (below): it waits only a moment.
    const auto& patience = root ? root_patience : busy_patience;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &patience, sizeof patience);
  }
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &reply_timeout, sizeof reply_timeout);
  if (!connect_to(fd.get(), *address, "@" + name, ec, why)) {
    // Root, whose connection the name does not take (a flood fills its
    // backlog, or a squatter holds it), goes through the daemon's socket for
    // root: a file only root may connect to, served first.
    if (!root) return -1;
    linux_files::unique_fd again(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    const auto path = again ? broker_presence::root_socket(again.get()) : std::nullopt;
    const auto root_address = path ? broker_wire::path_address(*path) : std::nullopt;
    std::error_code root_ec;
    if (!root_address || !connect_to(again.get(), *root_address, *path, root_ec, nullptr)) return -1;
    ::setsockopt(again.get(), SOL_SOCKET, SO_SNDTIMEO, &busy_patience, sizeof busy_patience);
    ::setsockopt(again.get(), SOL_SOCKET, SO_RCVTIMEO, &reply_timeout, sizeof reply_timeout);
    ::fcntl(again.get(), F_SETFL, ::fcntl(again.get(), F_GETFL) & ~O_NONBLOCK);
    ec.clear();
    return again.release();
  }
  if (!retry_busy) ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
  return fd.release();
}

broker_wire::reply receive(int fd, std::error_code& ec) {
  std::uint8_t buf[broker_wire::max_reply_size];
  int flags = MSG_TRUNC;
  while (true) {
    const auto n = ::recv(fd, buf, sizeof buf, flags);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == ECONNRESET && flags == MSG_TRUNC) {
      // The daemon closed a connection whose request it had not read (it
      // refused it): the kernel reports that first, then the reply it sent.
      flags = MSG_TRUNC | MSG_DONTWAIT;
      continue;
    }
    if (n < 0) {
      const bool reset = flags != MSG_TRUNC; // nothing followed the reset
      ec = reset ? std::make_error_code(std::errc::connection_reset)
           : errno == EAGAIN ? std::make_error_code(std::errc::timed_out)
                             : last_error();
      return {};
    }
    if (n == 0) {
      ec = std::make_error_code(std::errc::connection_reset); // the broker went away
      return {};
    }
    if (static_cast<std::size_t>(n) > sizeof buf) break;
    auto r = broker_wire::parse_reply({buf, static_cast<std::size_t>(n)});
    if (!r) break;
    ec.clear();
    return std::move(*r);
  }
  ec = error::malformed_state;
  return {};
}

broker_wire::reply exchange(int fd, const broker_wire::request& r, std::error_code& ec) {
  const auto bytes = broker_wire::encode(r);
  ssize_t sent;
  do {
    sent = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  if (sent != static_cast<ssize_t>(bytes.size())) {
    const bool timed_out = sent < 0 && errno == EAGAIN;
    ec = timed_out ? std::make_error_code(std::errc::timed_out) : sent < 0 ? last_error() : std::make_error_code(std::errc::io_error);
    if (sent < 0 && errno == EPIPE) {
      // The daemon refused the connection before reading: its reply says why.
      std::error_code refused;
      auto reply = receive(fd, refused);
      if (!refused && reply.result) {
        ec.clear();
        return reply;
      }
    }
    return {};
  }
  auto reply = receive(fd, ec);
  if (!ec && reply.kind != r.kind && !reply.result) ec = error::malformed_state;
  return reply;
}

} // namespace broker_link

namespace {

class broker_lease final : public registry::lease {
public:
  explicit broker_lease(linux_files::unique_fd fd) : fd_(std::move(fd)) {}
  ~broker_lease() override {
    std::error_code ignored;
    release(ignored);
  }
  // The grant lives exactly as long as this connection: a broker that died
  // (or restarted) has hung up, and the block may already be someone else's.
  std::error_code lost() override {
    if (!lost_ && fd_) {
      std::uint8_t byte;
      const auto n = ::recv(fd_.get(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      lost_ = n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
    }
    return lost_ ? std::error_code(linux_error::reservation_lost) : std::error_code();
  }

  void release(std::error_code& ec) {
    if (!fd_) {
      ec = error::already_released;
      return;
    }

    // An explicit release so the block is free when this returns (closing
    // alone frees it too, but only once the daemon sees the hang-up).
    broker_wire::request r;
    r.kind = broker_wire::op::release;
    const auto reply = broker_link::exchange(fd_.get(), r, ec);
    if (!ec) {
      ec = reply.result;
    } else if (ec == std::errc::connection_reset || ec == std::errc::broken_pipe || lost()) {
      ec = linux_error::reservation_lost; // the broker had gone: nothing left to free
    }
    fd_ = linux_files::unique_fd();
  }

private:
  linux_files::unique_fd fd_;
  bool lost_ = false;
};

} // namespace

namespace {

// The caller's rights as the daemon sees them (hello); nullopt with `ec`
// when it did not say (it refused the connection, or did not answer in time).
std::optional<bool> ask_rights(int fd, std::error_code& ec) {
  broker_wire::request hello;
  hello.kind = broker_wire::op::hello;
  const auto reply = broker_link::exchange(fd, hello, ec);
  if (!ec) ec = reply.result;
  if (ec) return std::nullopt;
  return (reply.flags & broker_wire::flag_persistent) != 0;
}

} // namespace

std::shared_ptr<broker_registry> broker_registry::connect(const std::string& name, std::string& reason) {
  std::error_code ec;
  linux_files::unique_fd fd(broker_link::connect(name, ec, &reason, false));
  if (!fd) {
    // A full backlog: the genuine daemon, busy, if one serves this namespace
    // (its presence says so without talking to whoever holds the name).
    if (ec == linux_error::broker_busy && broker_presence::daemon_serves()) {
      return std::shared_ptr<broker_registry>(new broker_registry(name, std::nullopt));
    }
    return nullptr;
  }
  // Root's daemon answered: broker mode even if it refused this connection
  // (its limits), so a process started during a flood is not left in
  // another mode for life.
  return std::shared_ptr<broker_registry>(new broker_registry(name, ask_rights(fd.get(), ec)));
}

broker_wire::reply broker_registry::call(const broker_wire::request& r, std::error_code& ec) const {
  linux_files::unique_fd fd(broker_link::connect(name_, ec));
  if (!fd) return {};
  auto reply = broker_link::exchange(fd.get(), r, ec);
  if (!ec) ec = reply.result;
  return reply;
}

std::unique_ptr<registry::lease> broker_registry::grant(protocol p, port_range request, reservation_token token,
                                                         blocking b, port_range& granted, std::error_code& ec) {
  if (b == blocking::forbidden) { // a round trip to the daemon: the blocking pool's job
    ec = std::make_error_code(std::errc::operation_would_block);
    return nullptr;
  }
  linux_files::unique_fd fd(broker_link::connect(name_, ec));
  if (!fd) return nullptr;
  broker_wire::request r;
  r.kind = broker_wire::op::acquire;
  r.proto = p;
  r.first = request.first();
  r.count = request.count();
  r.token = token.value();
  const auto reply = broker_link::exchange(fd.get(), r, ec);
  if (!ec) ec = reply.result;
  if (ec) return nullptr;
  granted = port_range(reply.first, reply.count);
  return std::make_unique<broker_lease>(std::move(fd));
}

void broker_registry::release(lease& l, blocking b, std::error_code& ec) {
  if (b == blocking::forbidden) {
    ec = std::make_error_code(std::errc::operation_would_block);
    return;
  }
  static_cast<broker_lease&>(l).release(ec);
}

std::error_code broker_registry::classify_unknown(reservation_token token, blocking) {
  broker_wire::request r;
  r.kind = broker_wire::op::classify;
  r.token = token.value();
  std::error_code ec;
  const auto reply = call(r, ec);
  if (ec) return ec;
  return reply.flags != 0 ? std::error_code(error::foreign_token) : std::error_code(error::unknown_token);
}

std::optional<port_range> broker_registry::persistent_block(protocol p, reservation_token token, blocking,
                                                            std::error_code& ec) {
  broker_wire::request r;
  r.kind = broker_wire::op::persistent_block;
  r.proto = p;
  r.token = token.value();
  const auto reply = call(r, ec);
  if (ec || reply.count == 0) return std::nullopt;
  if ((ec = persistent_access())) return std::nullopt;
  return port_range(reply.first, reply.count);
}

std::error_code broker_registry::persistent_access() const {
  std::lock_guard lock(mutex_);
  if (!persistent_allowed_) {
    std::error_code ec;
    linux_files::unique_fd fd(broker_link::connect(name_, ec));
    if (!fd) return ec;
    persistent_allowed_ = ask_rights(fd.get(), ec);
    if (!persistent_allowed_) return ec;
  }
  return *persistent_allowed_ ? std::error_code() : std::error_code(error::privilege_required);
}

std::vector<runtime_entry> broker_registry::list(std::error_code& ec) {
  std::vector<runtime_entry> out;
  linux_files::unique_fd fd(broker_link::connect(name_, ec));
  if (!fd) return out;
  broker_wire::request r;
  r.kind = broker_wire::op::list;
  // A page per request from a cursor: the daemon never queues a listing for
  // a client that does not read. Bounded: blocks of one protocol are
  // disjoint, so there are at most 2 x 65,536 of them.
  constexpr std::size_t max_pages = 2 * 65536 / broker_wire::max_entries_per_reply + 2;
  for (std::size_t page = 0; page < max_pages; ++page) {
    const auto reply = broker_link::exchange(fd.get(), r, ec);
    if (!ec) ec = reply.result;
    if (ec) return {};
    for (const auto& e : reply.entries) {
      runtime_entry entry{e.proto, port_range(e.first, e.count), e.pid};
      entry.owner_uid = e.uid;
      entry.token = reservation_token{e.token};
      out.push_back(entry);
    }
    if ((reply.flags & broker_wire::flag_more) == 0) return out;
    if (reply.token <= r.token) break; // a cursor that does not advance
    r.token = reply.token;
  }
  ec = error::malformed_state;
  return {};
}

reservation_token broker_registry::persistent_create(protocol p, port_range range, std::error_code& ec) {
  broker_wire::request r;
  r.kind = broker_wire::op::persistent_create;
  r.proto = p;
  r.first = range.first();
  r.count = range.count();
  // `portres add --force` sets the required share to 0 in its environment;
  // the daemon decides whether this caller may override.
  if (reserved_ports::required_free_share() <= 0.0) r.flags = broker_wire::flag_force;
  const auto reply = call(r, ec);
  return ec ? reservation_token{} : reservation_token{reply.token};
}

void broker_registry::persistent_remove(protocol p, port_range range, std::error_code& ec) {
  broker_wire::request r;
  r.kind = broker_wire::op::persistent_remove;
  r.proto = p;
  r.first = range.first();
  r.count = range.count();
  call(r, ec);
}

void broker_registry::persistent_apply(std::error_code& ec) {
  broker_wire::request r;
  r.kind = broker_wire::op::persistent_apply;
  call(r, ec);
}

} // namespace portres::detail
