// A move-only, one-shot, type-erased completion handler (Asio 1.22 has no
// any_completion_handler). It keeps the I/O executor and the handler's
// associated executor busy until it is invoked, and delivers as Asio's own
// operations do: posted to the I/O executor (never inline, so a result found
// before an operation starts is never delivered from inside the initiating
// function), then dispatched to the handler's executor. A handler whose
// executor runs work on a thread of its own (use_future's runs on Asio's
// system pool) therefore still completes on a thread running the I/O object.
#ifndef PORTRES_DETAIL_COMPLETION_HPP
#define PORTRES_DETAIL_COMPLETION_HPP

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>

#include "portres/detail/blocking_work.hpp"

#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

namespace portres::detail {

template <class... Args>
class completion {
public:
  completion() = default;

  /// Wraps `handler`; `io_executor` is the executor of the I/O object (used
  /// when the handler has no associated executor).
  template <class Handler, class IoExecutor>
  completion(Handler&& handler, const IoExecutor& io_executor)
      : impl_(std::make_unique<impl<std::decay_t<Handler>, IoExecutor>>(std::forward<Handler>(handler),
                                                                        io_executor)) {}

  completion(completion&&) noexcept = default;
  completion& operator=(completion&&) noexcept = default;

  explicit operator bool() const noexcept { return impl_ != nullptr; }

  /// The handler's associated cancellation slot (may be unconnected).
  asio::cancellation_slot cancellation_slot() const noexcept {
    return impl_ ? impl_->slot() : asio::cancellation_slot{};
  }

  /// Registers `work`, a job on the library's blocking pool that will invoke
  /// this, with the contexts the delivery touches (I/O and handler
  /// executors'): their destruction waits until the job lets `work` go.
  /// False if one of them is already shutting down (nothing is held).
  bool enter(blocking_work& work) const { return impl_->enter(work); }

  /// Posts the handler with `args` to its executor. Call exactly once.
  void operator()(Args... args) {
    auto self = std::move(impl_);
    // A cancellation handler must not outlive the operation it cancels.
    if (auto slot = self->slot(); slot.is_connected()) slot.clear();
    self->post(std::move(args)...);
  }

private:
  struct base {
    virtual ~base() = default;
    virtual asio::cancellation_slot slot() const noexcept = 0;
    virtual void post(Args&&... args) = 0;
    virtual bool enter(blocking_work& work) const = 0;
  };

  template <class Handler, class IoExecutor>
  struct impl final : base {
    using executor_type = asio::associated_executor_t<Handler, IoExecutor>;

    // H: the handler as given, an lvalue (copied, as Asio allows) or an rvalue.
    template <class H>
    impl(H&& h, const IoExecutor& io_ex)
        : io_work(io_ex), handler_work(asio::get_associated_executor(h, io_ex)), handler(std::forward<H>(h)) {}

    asio::cancellation_slot slot() const noexcept override {
      return asio::get_associated_cancellation_slot(handler);
    }

    bool enter(blocking_work& work) const override {
      return work.enter(context_of(io_work.get_executor()), context_of(handler_work.get_executor()));
    }

    void post(Args&&... args) override {
      auto deliver = [h = std::move(handler), results = std::make_tuple(std::move(args)...)]() mutable {
        std::apply(std::move(h), std::move(results));
      };
      if constexpr (std::is_same_v<executor_type, IoExecutor>) {
        if (handler_work.get_executor() == io_work.get_executor()) {
          asio::post(io_work.get_executor(), std::move(deliver)); // one hop when both are the same
          handler_work.reset();
          io_work.reset();
          return;
        }
      }
      asio::post(io_work.get_executor(), asio::bind_executor(handler_work.get_executor(), std::move(deliver)));
      handler_work.reset();
      io_work.reset();
    }

    asio::executor_work_guard<IoExecutor> io_work;
    asio::executor_work_guard<executor_type> handler_work;
    Handler handler;
  };

  std::unique_ptr<base> impl_;
};

} // namespace portres::detail

#endif
