#ifndef PORTRES_IMPL_RESERVATION_HPP
#define PORTRES_IMPL_RESERVATION_HPP

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/system_executor.hpp>

#include <utility>

namespace portres {
namespace detail {

struct initiate_acquire {
  asio::any_io_executor executor;

  template <class Handler>
  void operator()(Handler&& handler, protocol p, port_range range) const {
    detail::async_acquire(executor, p, range, acquire_completion(std::forward<Handler>(handler), executor));
  }
};

struct initiate_release {
  asio::any_io_executor executor; // empty for a never-acquired reservation

  template <class Handler>
  void operator()(Handler&& handler, state_ptr state) const {
    if (executor) {
      detail::async_release(std::move(state), status_completion(std::forward<Handler>(handler), executor));
    } else {
      detail::async_release(std::move(state),
                            status_completion(std::forward<Handler>(handler), asio::system_executor()));
    }
  }
};

} // namespace detail

template <class CompletionToken>
auto runtime_reservation::async_release(CompletionToken&& token) {
  return asio::async_initiate<CompletionToken, void(std::error_code)>(detail::initiate_release{executor_}, token,
                                                                      std::move(state_));
}

template <class Executor, class CompletionToken>
auto async_acquire(const Executor& ex, protocol p, port_range range, CompletionToken&& token) {
  return asio::async_initiate<CompletionToken, void(std::error_code, runtime_reservation)>(
      detail::initiate_acquire{asio::any_io_executor(ex)}, token, p, range);
}

template <class Executor>
runtime_reservation acquire(const Executor& ex, protocol p, port_range range, std::error_code& ec) {
  return runtime_reservation(detail::acquire(asio::any_io_executor(ex), p, range, ec));
}

template <class Executor>
runtime_reservation acquire(const Executor& ex, protocol p, port_range range) {
  std::error_code ec;
  auto r = acquire(ex, p, range, ec);
  detail::throw_if(ec, "portres::acquire");
  return r;
}

} // namespace portres

#endif
