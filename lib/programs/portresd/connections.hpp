// portresd's client connections: the descriptors it may hold and who may
// hold how many. A runtime grant is a connection, so the table is bounded by
// the descriptor limit; non-root users together stay below it by a reserve
// root always has (a flood of other users' connections never locks root
// out), each uid below its policy cap. A connection that holds no grant is
// closed at a fixed time after it was opened, whatever it says meanwhile.
#ifndef PORTRES_PROGRAMS_PORTRESD_CONNECTIONS_HPP
#define PORTRES_PROGRAMS_PORTRESD_CONNECTIONS_HPP

#include "linux/state_files.hpp"
#include "portresd/policy.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <system_error>
#include <unordered_map>
#include <vector>

#include <sys/socket.h>

namespace portres::portresd {

using clock = std::chrono::steady_clock;

struct connection {
  detail::linux_files::unique_fd fd;
  ucred peer{};
  std::optional<std::uint64_t> held; ///< the token of its grant
  clock::time_point opened;
  std::uint64_t serial = 0; ///< tells a connection from a later one on the same descriptor number
};

class connection_table {
public:
  /// `descriptors`: how many client connections the daemon can hold.
  void set_capacity(std::size_t descriptors);
  /// linux_error::connection_quota when `uid` may not open one more.
  std::error_code admit(std::uint32_t uid, const policy& rules) const;
  connection& add(detail::linux_files::unique_fd fd, const ucred& peer);
  connection* find(int key);
  void remove(int key);
  /// Connections holding nothing opened more than `limit` ago.
  std::vector<int> expired(clock::time_point now, clock::duration limit);
  std::size_t size() const { return conns_.size(); }
  std::vector<int> keys() const;

private:
  std::unordered_map<int, connection> conns_;
  std::unordered_map<std::uint32_t, std::uint32_t> per_uid_;
  std::size_t non_root_ = 0;
  std::size_t capacity_ = 1024;
  std::size_t root_reserve_ = 256;
  std::uint64_t next_serial_ = 1;
  std::deque<std::pair<clock::time_point, std::pair<int, std::uint64_t>>> opened_; // in order of opening
};

} // namespace portres::portresd

#endif
