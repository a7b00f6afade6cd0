// What the pool core's two files share.
#ifndef PORTRES_SRC_CORE_POOL_INTERNAL_HPP
#define PORTRES_SRC_CORE_POOL_INTERNAL_HPP

#include "backend.hpp"
#include "portres/detail/pool_core.hpp"
#include "portres/error.hpp"

#include <asio/error.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace portres::detail {

/// Counts binds under way on the blocking pool, so a closing pool can wait
/// for them.
struct pool_blocking_gate {
  std::mutex mutex;
  std::condition_variable idle;
  int in_flight = 0;
  void enter() {
    std::lock_guard lock(mutex);
    ++in_flight;
  }
  void leave() {
    std::lock_guard lock(mutex);
    if (--in_flight == 0) idle.notify_all();
  }
  void wait_idle() {
    std::unique_lock lock(mutex);
    idle.wait(lock, [&] { return in_flight == 0; });
  }
};

// Retries of a block without free ports back off from 5 ms to 1 s.
constexpr std::chrono::milliseconds first_retry_delay{5};
constexpr std::chrono::milliseconds last_retry_delay{1000};

} // namespace portres::detail

#endif
