// The three ways a client gets a connection, each doing everything its user
// pays for: kernel autobind, a hand-written explicit-bind client
// (SO_REUSEADDR + bind(next port) + connect), and a portres socket pool. The
// connect and churn cases and the system-call count (--syscalls) share them.
#ifndef PORTRES_BENCH_CLIENTS_HPP
#define PORTRES_BENCH_CLIENTS_HPP

#include "bench_support.hpp"

#include "portres/portres.hpp"

#include <asio/io_context.hpp>

#include <memory>
#include <optional>

namespace portres_bench {

using tcp = asio::ip::tcp;

enum class client_kind { autobind, explicit_bind, pool };
enum class close_kind { rst, fin }; // rst: abortive close, no TIME_WAIT; fin: client closes first

struct client_options {
  client_kind kind = client_kind::autobind;
  close_kind close = close_kind::rst;
  port_span explicit_ports{25000, 25999}; // explicit_bind: the ports it cycles through
  portres::port_policy policy = portres::port_policy::sequential;
  std::uint32_t block = 512;                // pool: ports in its reservation
  std::size_t low_water = 16, high_water = 64;
};

class client {
public:
  /// Sets up (pool: acquire and warm up). On failure `ec` says why.
  client(asio::io_context& io, const client_options& o, std::error_code& ec);
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  /// One connection: get a socket ready, connect, close; the pool also runs
  /// the refill work that is due (io.poll()), all on the calling thread.
  /// `until_connected` is the time from the start until connect returned.
  std::error_code connect_once(const tcp::endpoint& server, clock_type::duration& until_connected);

  const char* name() const;

private:
  asio::io_context& io_;
  client_options o_;
  std::uint32_t next_ = 0;
  portres::runtime_reservation block_;
  std::unique_ptr<portres::socket_pool<tcp>> pool_;
};

const char* to_string(client_kind k);

/// --syscalls=autobind|explicit|pool --count=N: sets up, prints "ready",
/// waits for a line on stdin (strace attaches meanwhile), runs N
/// connections against a sink server in a child process, prints a summary.
int syscalls_main(const std::string& kind, std::uint32_t count);

} // namespace portres_bench

#endif
