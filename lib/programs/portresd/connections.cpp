#include "portresd/connections.hpp"

#include "portres/linux_error.hpp"

#include <algorithm>

namespace portres::portresd {

void connection_table::set_capacity(std::size_t descriptors) {
  capacity_ = std::max<std::size_t>(descriptors, 16);
  // Root's own share: a quarter of the table, at most 256 descriptors.
  root_reserve_ = std::min<std::size_t>(256, capacity_ / 4);
}

std::error_code connection_table::admit(std::uint32_t uid, const policy& rules) const {
  if (conns_.size() >= capacity_) return linux_error::connection_quota;
  if (uid == 0) return {};
  const auto it = per_uid_.find(uid);
  const std::uint32_t mine = it == per_uid_.end() ? 0 : it->second;
  if (non_root_ >= capacity_ - root_reserve_ || mine >= rules.connections_for(uid)) return linux_error::connection_quota;
  return {};
}

connection& connection_table::add(detail::linux_files::unique_fd fd, const ucred& peer) {
  const int key = fd.get();
  connection c;
  c.fd = std::move(fd);
  c.peer = peer;
  c.opened = clock::now();
  c.serial = next_serial_++;
  if (peer.uid != 0) {
    ++per_uid_[peer.uid];
    ++non_root_;
  }
  opened_.push_back({c.opened, {key, c.serial}});
  return conns_.insert_or_assign(key, std::move(c)).first->second;
}

connection* connection_table::find(int key) {
  const auto it = conns_.find(key);
  return it == conns_.end() ? nullptr : &it->second;
}

void connection_table::remove(int key) {
  const auto it = conns_.find(key);
  if (it == conns_.end()) return;
  if (const auto uid = it->second.peer.uid; uid != 0) {
    if (auto u = per_uid_.find(uid); u != per_uid_.end() && --u->second == 0) per_uid_.erase(u);
    --non_root_;
  }
  conns_.erase(it); // closing the descriptor also takes it out of the epoll set
}

std::vector<int> connection_table::keys() const {
  std::vector<int> out;
  for (const auto& [key, c] : conns_) out.push_back(key);
  return out;
}

std::vector<int> connection_table::expired(clock::time_point now, clock::duration limit) {
  std::vector<int> out;
  while (!opened_.empty() && now - opened_.front().first > limit) {
    const auto [key, serial] = opened_.front().second;
    opened_.pop_front();
    const auto* c = find(key);
    if (c && c->serial == serial && !c->held) out.push_back(key);
  }
  return out;
}

} // namespace portres::portresd
