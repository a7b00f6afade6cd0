// What every `portres selftest` check shares: its result, the OS calls it
// made (with the OS's raw codes, os_trace.hpp), and small helpers.
#ifndef PORTRES_PROGRAMS_PORTRES_SELFTEST_SUPPORT_HPP
#define PORTRES_PROGRAMS_PORTRES_SELFTEST_SUPPORT_HPP

#include "os_trace.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <system_error>
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

/// Runs `io` until `done` or `limit` passes.
template <class Done>
bool run_until(asio::io_context& io, Done done, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  io.restart();
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    io.run_for(std::chrono::milliseconds(10));
    io.restart();
  }
  return done();
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
std::vector<selftest_detail::check_result> run_checks(asio::io_context& io);
} // namespace cli

#endif
