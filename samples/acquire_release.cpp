// The reference pages' acquire/release flow with portres: acquire a runtime
// reservation, print its range and token, release it. One completion style
// per run: --style callback | future | coroutine.
//
//   acquire_release --protocol tcp --start 0 --count 20 --style coroutine
#include "cli/options.hpp"

#include <portres/portres.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>

#include <cstdio>
#include <thread>

namespace {

void print_granted(const portres::runtime_reservation& r) {
  std::printf("acquired %s block %s token %s\n", portres::to_string(r.protocol()), portres::to_string(r.range()).c_str(),
              portres::to_string(r.token()).c_str());
}

int fail(const char* step, std::error_code ec) {
  std::fprintf(stderr, "acquire_release: %s failed: %s\n", step, ec.message().c_str());
  return 1;
}

int with_callbacks(asio::io_context& io, portres::protocol p, portres::port_range range) {
  int status = 0;
  portres::runtime_reservation held;
  portres::async_acquire(io.get_executor(), p, range, [&](std::error_code ec, portres::runtime_reservation r) {
    if (ec) {
      status = fail("acquire", ec);
      return;
    }
    print_granted(r);
    held = std::move(r);
    held.async_release([&](std::error_code ec2) {
      status = ec2 ? fail("release", ec2) : (std::printf("released\n"), 0);
    });
  });
  io.run();
  return status;
}

int with_futures(asio::io_context& io, portres::protocol p, portres::port_range range) {
  auto busy = asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });
  int status = 0;
  try {
    auto r = portres::async_acquire(io.get_executor(), p, range, asio::use_future).get();
    print_granted(r);
    r.async_release(asio::use_future).get();
    std::printf("released\n");
  } catch (const std::system_error& e) {
    status = fail("acquire/release", e.code());
  }
  busy.reset();
  runner.join();
  return status;
}

int with_coroutine(asio::io_context& io, portres::protocol p, portres::port_range range) {
  int status = 0;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        auto r = co_await portres::async_acquire(ex, p, range, asio::use_awaitable);
        print_granted(r);
        co_await r.async_release(asio::use_awaitable);
        std::printf("released\n");
      },
      [&](std::exception_ptr e) {
        if (!e) return;
        try {
          std::rethrow_exception(e);
        } catch (const std::system_error& error) {
          status = fail("acquire/release", error.code());
        }
      });
  io.run();
  return status;
}

} // namespace

int main(int argc, char** argv) {
  try {
    const cli::options opts(argc, argv, {"protocol", "start", "count", "style"}, {"help"});
    if (opts.flag("help")) {
      std::printf("usage: acquire_release --protocol tcp|udp --start N --count N [--style callback|future|coroutine]\n"
                  "  --start 0 asks for any free block of --count ports (a wildcard block)\n");
      return 0;
    }
    const auto p = opts.protocol();
    const auto range = opts.range(true);
    const auto style = opts.text("style", "coroutine");
    asio::io_context io;
    std::printf("backend %s\n", portres::to_string(portres::active_backend()));
    if (style == "callback") return with_callbacks(io, p, range);
    if (style == "future") return with_futures(io, p, range);
    if (style == "coroutine") return with_coroutine(io, p, range);
    throw cli::usage_error("--style must be callback, future or coroutine, not '" + style + "'");
  } catch (const cli::usage_error& e) {
    std::fprintf(stderr, "acquire_release: %s\n", e.what());
    return 2;
  }
}
