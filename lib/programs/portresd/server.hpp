// portresd's server: the loop and the wire (server.cpp) and what each
// request does (requests.cpp). Private to portresd.
#ifndef PORTRES_PROGRAMS_PORTRESD_SERVER_HPP
#define PORTRES_PROGRAMS_PORTRESD_SERVER_HPP

#include "linux/broker_presence.hpp"
#include "linux/broker_protocol.hpp"
#include "linux/persistent_store.hpp"
#include "portresd/connections.hpp"
#include "portresd/daemon.hpp"
#include "portresd/daemon_state.hpp"
#include "portresd/grant_table.hpp"
#include "portresd/kernel_view.hpp"
#include "portresd/log.hpp"
#include "portresd/store_view.hpp"

#include <optional>
#include <tuple>
#include <vector>

namespace portres::portresd {

class server {
public:
  server(const options& opts, int folder);
  /// Listens, serves until SIGTERM/SIGINT, leaves the kernel list with the
  /// persistent blocks only; the exit status.
  int run();

private:
  // A reply held until this turn's write of the kernel list: what it
  // answers depends on whether the write succeeds.
  struct pending {
    int key;
    std::uint64_t serial;
    detail::broker_wire::reply reply;
    bool keep;
    std::uint64_t grant = 0;                            ///< taken back if the write fails
    std::optional<detail::linux_store::entry> created;  ///< removed again if the write fails
    bool must_write = false;                            ///< apply: fails if the write fails
  };
  // What a request's handler decided.
  struct outcome {
    bool keep = true;    ///< the connection stays open
    bool defer = false;  ///< the reply waits for this turn's kernel write
    std::uint64_t grant = 0;
    std::optional<detail::linux_store::entry> created;
    bool must_write = false;
  };

  // server.cpp: the loop and the wire.
  bool listen();
  void listen_for_root();
  bool watch(int fd, std::uint64_t tag);
  void accept_some(int listener, int most);
  void refuse_connection(detail::linux_files::unique_fd fd, std::uint32_t uid);
  void serve(int key, std::uint32_t events);
  void drop(int key);
  void end_turn();
  static bool send_reply(int fd, const detail::broker_wire::reply& r);

  // requests.cpp: each request.
  detail::broker_wire::reply handle(connection& c, const detail::broker_wire::request& q, outcome& out);
  std::error_code acquire(connection& c, const detail::broker_wire::request& q, detail::broker_wire::reply& r,
                          outcome& out);
  std::error_code persistent(connection& c, const detail::broker_wire::request& q, detail::broker_wire::reply& r,
                             outcome& out);
  void list_page(connection& c, std::uint64_t cursor, detail::broker_wire::reply& r) const;
  port_range place_for(protocol p, port_range request, port_range placement, const detail::port_bitmap* foreign,
                       std::error_code& ec);
  const detail::port_bitmap* held_ports(protocol p, port_range request, std::error_code& ec);
  bool may_persist(const connection& c) const;
  std::error_code refuse(const connection& c, std::error_code why, const std::string& what, const std::string& detail);
  /// What the kernel list must hold for us: live and persistent blocks where
  /// they meet the ephemeral range (and, with the store unreadable, whatever
  /// we listed before: persistent blocks unknown, nothing removed).
  const detail::port_bitmap& wanted();
  detail::port_bitmap wanted_with(const std::vector<detail::linux_store::entry>& stored);
  port_range ephemeral();
  bool meets_ephemeral(port_range r);
  std::uint32_t unprivileged_start(); // ip_unprivileged_port_start, read at most every 250 ms
  void forget(connection& c);

  const options& opts_;
  int folder_; // the namespace folder (run() holds it open)
  port_range placement_;
  kernel_view kernel_;
  store_view store_;
  grant_table table_;
  connection_table conns_;
  registry_watch registry_;
  refusal_log refusals_;
  detail::broker_presence::marker presence_;
  detail::linux_files::unique_fd listener_, root_listener_, signals_, epoll_, spare_;
  std::string root_socket_; // the path of root_listener_
  std::vector<pending> pending_;
  detail::port_bitmap wanted_; // what wanted() said for wanted_key_
  std::optional<std::tuple<std::uint64_t, std::uint64_t, port_range>> wanted_key_;
  std::optional<detail::port_bitmap> held_this_turn_[2]; // ports sockets hold, asked once per turn
  detail::port_bitmap recent_held_;
  bool stopping_ = false;
  port_range ephemeral_;
  std::uint32_t unprivileged_ = 1024;
  clock::time_point ephemeral_read_{}, unprivileged_read_{}, last_sweep_{};
};

} // namespace portres::portresd

#endif
