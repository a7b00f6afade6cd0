// The client side of portresd: a registry whose grants live in the broker.
// Each runtime reservation is one connection to the daemon; the daemon frees
// the block when the connection closes (release, exit or crash), as Windows
// frees a reservation with its handle. Every connection checks that the peer
// is root (SO_PEERCRED), so nobody else can pose as the broker, and nothing
// on the socket waits without a bound: a connect to a listener whose backlog
// is full waits at most a second (root: 20 ms, then the daemon's socket for
// root), sends and replies time out.
//
// Fork: the connection is inherited (close-on-exec, so not across exec); the
// block then lives until parent and child have both closed it, and a release
// by either frees it for both.
#ifndef PORTRES_SRC_LINUX_BROKER_CLIENT_HPP
#define PORTRES_SRC_LINUX_BROKER_CLIENT_HPP

#include "core/registry.hpp"
#include "linux/broker_protocol.hpp"
#include "portres/usage.hpp"

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace portres::detail {

class broker_registry final : public registry {
public:
  /// Connects to the broker listening on abstract socket `name` (one
  /// attempt: never waits on a full backlog); null with `reason` when nobody
  /// answers or the listener is not root. A genuine daemon that refused this
  /// connection (its connection limits) or whose backlog is full while it
  /// serves this namespace still gives a registry: the next calls try again.
  static std::shared_ptr<broker_registry> connect(const std::string& name, std::string& reason);

  std::unique_ptr<lease> grant(protocol p, port_range request, reservation_token token, blocking b,
                               port_range& granted, std::error_code& ec) override;
  void release(lease& l, blocking b, std::error_code& ec) override;
  std::error_code classify_unknown(reservation_token token, blocking b) override;
  std::optional<port_range> persistent_block(protocol p, reservation_token token, blocking b,
                                             std::error_code& ec) override;
  std::error_code persistent_access() const override;

  /// Every live reservation of this network namespace (others' tokens
  /// hidden), a page per request; an error rather than a partial list.
  std::vector<runtime_entry> list(std::error_code& ec);
  reservation_token persistent_create(protocol p, port_range r, std::error_code& ec);
  void persistent_remove(protocol p, port_range r, std::error_code& ec);
  void persistent_apply(std::error_code& ec);

  const std::string& name() const noexcept { return name_; }

private:
  broker_registry(std::string name, std::optional<bool> persistent_allowed)
      : name_(std::move(name)), persistent_allowed_(persistent_allowed) {}
  broker_wire::reply call(const broker_wire::request& r, std::error_code& ec) const;

  std::string name_;
  mutable std::mutex mutex_;
  mutable std::optional<bool> persistent_allowed_; // the daemon's hello; asked again until known
};

namespace broker_link {
/// A connected SOCK_SEQPACKET socket to abstract `name` (for root, else the
/// daemon's socket for root), the peer checked to be root; -1 with `ec`
/// (and `why` in words) otherwise. A full backlog is waited for at most a
/// second when `retry_busy`, not at all otherwise, then
/// linux_error::broker_busy. Sends and receives on it time out.
int connect(const std::string& name, std::error_code& ec, std::string* why = nullptr, bool retry_busy = true);
/// Sends `r` and reads one reply on `fd` (bounded wait). An error reply
/// (the daemon refusing the connection before reading) answers any request.
broker_wire::reply exchange(int fd, const broker_wire::request& r, std::error_code& ec);
/// Reads one reply (bounded wait).
broker_wire::reply receive(int fd, std::error_code& ec);
} // namespace broker_link

} // namespace portres::detail

#endif
