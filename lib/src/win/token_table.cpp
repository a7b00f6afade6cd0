#include "win/token_table.hpp"

#include <winsock2.h>
#include <windows.h>

namespace portres::detail::win {
namespace {

std::error_code wsa_error() { return {::WSAGetLastError(), std::system_category()}; }

// 0 when unreadable (a closed socket): never a tag.
std::uint32_t read_timeout(native_socket s) {
  DWORD value = 0;
  int size = sizeof value;
  if (::getsockopt(static_cast<SOCKET>(s), SOL_SOCKET, SO_RCVTIMEO, reinterpret_cast<char*>(&value), &size) != 0) {
    return 0;
  }
  return value;
}

bool write_timeout(native_socket s, std::uint32_t value) {
  const DWORD v = value;
  return ::setsockopt(static_cast<SOCKET>(s), SOL_SOCKET, SO_RCVTIMEO, reinterpret_cast<const char*>(&v), sizeof v) == 0;
}

// Tags are timeouts of 12 days and more: no socket's own value in practice.
std::uint32_t first_tag() { return 0x40000000u + (::GetTickCount() & 0xffffu) * 0x100u; }

} // namespace

void token_table::add(reservation r) {
  std::lock_guard lock(mutex_);
  live_[r.token] = r.range;
}

void token_table::forget(reservation_token t) {
  std::lock_guard lock(mutex_);
  live_.erase(t);
}

std::size_t token_table::live_count() {
  std::lock_guard lock(mutex_);
  return live_.size();
}

std::uint32_t token_table::prepare(native_socket s, reservation_token t, std::error_code& ec) {
  std::lock_guard lock(mutex_);
  if (next_tag_ == 0) next_tag_ = first_tag();
  DWORD current = 0;
  int size = sizeof current;
  if (::getsockopt(static_cast<SOCKET>(s), SOL_SOCKET, SO_RCVTIMEO, reinterpret_cast<char*>(&current), &size) != 0) {
    ec = wsa_error();
    return 0;
  }
  // Associated again through portres: keep the socket's own value, not the old tag.
  const auto old = associations_.find(s);
  const std::uint32_t own = old != associations_.end() && current == old->second.tag ? old->second.own : current;
  const std::uint32_t tag = next_tag_++;
  if (!write_timeout(s, tag)) {
    ec = wsa_error();
    return 0;
  }
  associations_[s] = {t, live_.contains(t), tag, own, false};
  ec.clear();
  return tag;
}

void token_table::confirm(native_socket s, std::uint32_t tag) {
  std::lock_guard lock(mutex_);
  const auto it = associations_.find(s);
  if (it == associations_.end() || it->second.tag != tag) return; // superseded or dropped
  if (read_timeout(s) != tag) {
    associations_.erase(it); // the socket was closed and its handle value reused meanwhile
    return;
  }
  it->second.confirmed = true;
}

void token_table::abandon(native_socket s, std::uint32_t tag) {
  std::lock_guard lock(mutex_);
  const auto it = associations_.find(s);
  if (it == associations_.end() || it->second.tag != tag) return; // another association's entry
  if (read_timeout(s) == tag) write_timeout(s, it->second.own);
  associations_.erase(it);
}

std::optional<std::pair<token_table::association, token_table::associated_block>> token_table::find(native_socket s) {
  std::lock_guard lock(mutex_);
  const auto it = associations_.find(s);
  if (it == associations_.end()) return std::nullopt;
  if (read_timeout(s) != it->second.tag) {
    associations_.erase(it); // another socket under a reused handle value
    return std::nullopt;
  }
  const auto entry = it->second;
  if (!entry.confirmed) return std::nullopt; // the associate has not completed yet
  if (!entry.runtime) return std::pair{entry, associated_block{{}, false, true}};
  const auto block = live_.find(entry.token);
  if (block == live_.end()) return std::pair{entry, associated_block{{}, false, false}};
  return std::pair{entry, associated_block{block->second, true, true}};
}

void token_table::consumed(native_socket s) {
  std::lock_guard lock(mutex_);
  const auto it = associations_.find(s);
  if (it == associations_.end()) return;
  write_timeout(s, it->second.own);
  associations_.erase(it);
}

} // namespace portres::detail::win
