// What every `portres selftest` check shares: its result, the OS calls it
// made (with the OS's raw codes, os_trace.hpp), and small helpers.
#ifndef PORTRES_PROGRAMS_PORTRES_SELFTEST_SUPPORT_HPP
#define PORTRES_PROGRAMS_PORTRES_SELFTEST_SUPPORT_HPP

#include "os_trace.hpp"

#include "cli/run_until.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <tuple>
#include <vector>

namespace cli::selftest_detail {

/// One check's outcome. result: pass, fail, not_supported, skipped,
/// inconclusive (a cancellation whose operation was no longer pending),
/// answered (a probe: the OS's answer is in `answer`, neither right nor
/// wrong), slow (it worked, but took long: `elapsed_ms`).
struct check_result {
  check_result() = default;
  check_result(std::string res, std::error_code e, std::string d, std::optional<bool> p = {}, std::optional<int> os = {})
      : result(std::move(res)), ec(e), detail(std::move(d)), pending(p), os_error(os) {}
  std::string name;
  std::string result;
  std::error_code ec; // what the check saw (translated by portres where portres translates)
  std::string detail;
  std::optional<bool> pending;     // cancellation checks: was the operation pending when cancelled?
  std::optional<int> os_error;     // the OS's own code, where the check knows it better than the trace
  std::optional<std::string> answer;
  std::optional<long long> elapsed_ms;
  std::vector<portres::detail::os_trace::call> os_calls; // the OS calls made during the check
};

check_result pass(std::string detail);
check_result fail(std::error_code ec, std::string detail);
check_result skipped(std::string why);
check_result answered(std::string answer, std::string detail, std::error_code ec = {});
/// A failure the platform explains (Wine, a system without the API) is not a defect.
check_result failed_or_unsupported(std::error_code ec, const std::string& what);

/// The OS message and the portable meaning (Wine's and MinGW's messages for
/// Winsock codes are often just "Unknown error code").
std::string describe(const std::error_code& ec);

/// The OS's own code in `ec` (Winsock / Win32 code or errno), none when
/// portres detected the failure itself.
std::optional<int> os_code(const std::error_code& ec);

/// The raw code of an OS call: the completion port's when one came, else the call's own.
int raw_code(const portres::detail::os_trace::call& c);

/// Records a call a probe makes itself (bind to a chosen port, connect,
/// setsockopt) beside the engine's, with its Winsock code (0: success).
void record_call(const char* what, std::uint64_t socket, int code);

/// How long a check waits for one operation before it gives up.
inline constexpr std::chrono::milliseconds check_bound = std::chrono::seconds(5);

/// A failure of a step that runs only after the synchronous acquire of this
/// run answered: ERROR_NOT_SUPPORTED is `not_supported` only when that
/// acquire said not supported too (Wine). After it passed, reservations
/// exist here, and the path that refused (the overlapped one, which async_*
/// and the pool use) failed.
check_result failed_unless_sync_unsupported(std::error_code ec, const std::string& what, bool sync_unsupported);

/// What one asynchronous operation of a check reported. Owned jointly by the
/// check and the operation's handler: all checks share one io_context, so a
/// handler the check gave up waiting for runs later, during another check,
/// and must find this alive rather than the check's dead stack frame.
template <class... Values>
struct async_outcome {
  int calls = 0;
  std::error_code ec;
  std::tuple<Values...> values;
  bool pending = false;             ///< the handler still waited for the OS when interrupted
  asio::cancellation_signal cancel; ///< bound to the handler's cancellation slot
};

template <class... Values>
struct awaited {
  std::shared_ptr<async_outcome<Values...>> state;
  std::optional<check_result> failure; ///< no completion within the bound, or more than one
};

/// Nothing to do between starting an operation and waiting for it.
struct no_interrupt {
  void operator()(asio::cancellation_signal&) const noexcept {}
};

/// The one shape of every asynchronous step of a check: `start(handler)`
/// initiates the operation; once everything ready has run, `interrupt`
/// (a cancellation through the signal, a close, or nothing) follows, and
/// `pending` records whether the handler still waited for the OS then.
/// Waits up to `limit` for the handler, and a little more to see that it
/// does not run twice. Giving up emits a terminal cancellation so that the
/// operation ends; its handler then writes into the shared state only.
template <class... Values, class Start, class Interrupt = no_interrupt>
awaited<Values...> await_once(asio::io_context& io, const std::string& what, Start start, Interrupt interrupt = {},
                              std::chrono::milliseconds limit = check_bound) {
  auto state = std::make_shared<async_outcome<Values...>>();
  start(asio::bind_cancellation_slot(state->cancel.slot(), [state](std::error_code ec, Values... v) {
    ++state->calls;
    state->ec = ec;
    state->values = std::tuple<Values...>(std::move(v)...);
  }));
  io.restart();
  io.poll();
  state->pending = state->calls == 0;
  interrupt(state->cancel);
  if (!run_until(io, [&state] { return state->calls > 0; }, limit)) {
    state->cancel.emit(asio::cancellation_type::terminal);
    return {state, fail({}, what + " never completed (gave up after " + std::to_string(limit.count()) + " ms)")};
  }
  io.restart();
  io.run_for(std::chrono::milliseconds(20));
  if (state->calls != 1) return {state, fail({}, what + ": handler called " + std::to_string(state->calls) + " times")};
  return {state, std::nullopt};
}

/// Destroys `io` once the operations still under way on it have ended,
/// waiting up to `limit`. An operation a check gave up on whose cancellation
/// the OS ignored would make ~io_context wait for it without a bound (Asio's
/// completion-port shutdown waits for every outstanding operation): `io` is
/// then left to the process exit, which ends the I/O. Returns whether `io`
/// was destroyed.
inline bool end_within(std::unique_ptr<asio::io_context> io, std::chrono::milliseconds limit) {
  io->restart();
  io->run_for(limit);
  if (!io->stopped()) {
    static_cast<void>(io.release()); // left to the process exit, on purpose
    return false;
  }
  return true;
}

/// What checks run on.
struct context {
  asio::io_context& io;
  asio::any_io_executor ex;
};

// Probes of what the reference pages leave open, and socket reuse (selftest_probes.cpp).
check_result probe_ipv4_on_dual_mode(context& c);
check_result probe_failed_bind_keeps_association(context& c);
check_result probe_release_while_bound(context& c);
check_result probe_shared_port(context& c);
check_result socket_reuse_peer_closes_first(context& c);
check_result socket_reuse_active_close(context& c);

} // namespace cli::selftest_detail

namespace cli {
/// Runs every check on `io` (the backend in force; the OS trace recording),
/// in the report's order (selftest_checks.cpp). Tests run it against the
/// simulated provider.
/// `done` is called with each result as its check completes, so that a
/// check that hangs shows which one it is.
std::vector<selftest_detail::check_result> run_checks(
    asio::io_context& io, const std::function<void(const selftest_detail::check_result&)>& done = {});
} // namespace cli

#endif
