// Keeps an execution context alive while a job on the library's blocking pool
// may still touch it. A job completes by posting to the I/O executor and
// releasing its work guards from the blocking pool's thread; a user who
// destroys the io_context as soon as the handler ran would race with that tail
// (Asio's scheduler even signals its condition variable after unlocking).
// As Asio's own resolver does, a service of the context counts such jobs, and
// its shutdown(), which the context's destructor calls before it destroys
// anything, waits until each has let go. A job never needs an io thread to
// finish, so the wait ends; after shutdown no job may start.
#ifndef PORTRES_DETAIL_BLOCKING_WORK_HPP
#define PORTRES_DETAIL_BLOCKING_WORK_HPP

#include <asio/execution.hpp>
#include <asio/execution_context.hpp>
#include <asio/query.hpp>

#include <array>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <type_traits>
#include <utility>

namespace portres::detail {

/// Counts the blocking-pool jobs that will still touch one execution context.
class blocking_work_service final : public asio::detail::execution_context_service_base<blocking_work_service> {
public:
  explicit blocking_work_service(asio::execution_context& context)
      : asio::detail::execution_context_service_base<blocking_work_service>(context) {}

  /// False once the context shuts down: the job must not start.
  bool enter() {
    std::lock_guard lock(mutex_);
    if (shut_down_) return false;
    ++in_flight_;
    return true;
  }

  void leave() {
    // Notified under the lock: the waiter cannot return (and the context be
    // destroyed) before this thread is done with the mutex.
    std::lock_guard lock(mutex_);
    if (--in_flight_ == 0 && shut_down_) idle_.notify_all();
  }

  void shutdown() override {
    std::unique_lock lock(mutex_);
    shut_down_ = true;
    idle_.wait(lock, [this] { return in_flight_ == 0; });
  }

private:
  std::mutex mutex_;
  std::condition_variable idle_;
  long in_flight_ = 0;
  bool shut_down_ = false;
};

/// The execution context behind `ex`, or null if it cannot be told.
template <class Executor>
asio::execution_context* context_of(const Executor& ex) noexcept {
  try {
    if constexpr (asio::can_query<const Executor&, asio::execution::context_t>::value) {
      return &static_cast<asio::execution_context&>(asio::query(ex, asio::execution::context));
    } else {
      return &static_cast<asio::execution_context&>(ex.context());
    }
  } catch (...) {
    return nullptr; // an empty polymorphic executor
  }
}

/// One job's registration with the contexts it will touch (at most two: the
/// I/O executor's and the handler's). Move-only; leaves on destruction, so a
/// job dropped before it ran still lets its contexts go.
class blocking_work {
public:
  blocking_work() = default;

  /// Registers with each distinct non-null context; false (and nothing held)
  /// when one of them is shutting down.
  bool enter(asio::execution_context* first, asio::execution_context* second) {
    release();
    if (second == first) second = nullptr;
    for (auto* context : {first, second}) {
      if (context == nullptr) continue;
      auto& service = asio::use_service<blocking_work_service>(*context);
      if (!service.enter()) {
        release();
        return false;
      }
      held_[count_++] = &service;
    }
    return true;
  }

  blocking_work(blocking_work&& other) noexcept
      : held_(std::exchange(other.held_, {})), count_(std::exchange(other.count_, 0)) {}
  blocking_work& operator=(blocking_work&& other) noexcept {
    if (this != &other) {
      release();
      held_ = std::exchange(other.held_, {});
      count_ = std::exchange(other.count_, 0);
    }
    return *this;
  }
  ~blocking_work() { release(); }

  /// Lets the contexts go; after this the job must not touch them.
  void release() noexcept {
    while (count_ > 0) held_[--count_]->leave();
  }

private:
  std::array<blocking_work_service*, 2> held_{};
  int count_ = 0;
};

} // namespace portres::detail

#endif
