#include "os_trace.hpp"

#include <algorithm>
#include <atomic>
#include <deque>
#include <mutex>
#include <utility>

namespace portres::detail::os_trace {
namespace {

constexpr std::size_t kept = 512;

struct trace {
  std::atomic<bool> on{false};
  std::mutex mutex;
  std::deque<call> calls; // ids first_id .. first_id + size - 1
  std::uint64_t first_id = 1;
};

trace& instance() {
  static trace t;
  return t;
}

} // namespace

void enable(bool on) noexcept { instance().on = on; }
bool enabled() noexcept { return instance().on; }

std::uint64_t begin(const call& c) noexcept {
  auto& t = instance();
  if (!t.on) return 0;
  try {
    std::lock_guard lock(t.mutex);
    t.calls.push_back(c);
    if (t.calls.size() > kept) {
      t.calls.pop_front();
      ++t.first_id;
    }
    return t.first_id + t.calls.size() - 1;
  } catch (...) { // out of memory, or the lock: the call goes unrecorded
    return 0;
  }
}

namespace {

// The record `id` under the lock, if it is still kept.
template <class Change>
void change(std::uint64_t id, Change f) noexcept {
  auto& t = instance();
  if (id == 0) return;
  try {
    std::lock_guard lock(t.mutex);
    if (id < t.first_id || id >= t.first_id + t.calls.size()) return;
    f(t.calls[id - t.first_id]);
  } catch (...) { // the lock only: the record stays as it was
  }
}

} // namespace

void issued(std::uint64_t id, int immediate, std::uint32_t bytes) noexcept {
  change(id, [&](call& c) {
    c.immediate = immediate;
    c.bytes = bytes;
  });
}

void finish(std::uint64_t id, std::optional<std::uint32_t> completion, std::uint32_t bytes, std::error_code result) noexcept {
  change(id, [&](call& c) {
    c.completion = completion;
    c.bytes = bytes;
    c.result = result;
  });
}

std::uint64_t mark() {
  auto& t = instance();
  std::lock_guard lock(t.mutex);
  return t.first_id + t.calls.size();
}

std::vector<call> since(std::uint64_t from) {
  auto& t = instance();
  std::lock_guard lock(t.mutex);
  std::vector<call> out;
  for (std::uint64_t id = std::max(from, t.first_id); id < t.first_id + t.calls.size(); ++id) {
    out.push_back(t.calls[id - t.first_id]);
  }
  return out;
}

} // namespace portres::detail::os_trace
