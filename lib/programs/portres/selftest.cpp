// `portres selftest [--json]`: runs the conformance checks and probes
// against the operating system it runs on, through the native backend, so
// that a user with a real Windows machine can tell us what that machine does.
// Each check reports a result (selftest_support.hpp), the error it saw, the
// OS's own code for it (a completion port's raw Win32 code where the error
// came through the port) and every OS call it made with the OS's raw answer
// and byte count. The checks are in selftest_checks.cpp and
// selftest_probes.cpp.
#include "selftest.hpp"
#include "selftest_support.hpp"

#include "cli/json.hpp"

#include <portres/portres.hpp>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#if defined(_WIN32)
#include <windows.h>
#else
#include <sys/utsname.h>
#endif

namespace cli {
namespace selftest_detail {

check_result pass(std::string detail) { return {"pass", {}, std::move(detail)}; }
check_result fail(std::error_code ec, std::string detail) { return {"fail", ec, std::move(detail)}; }
check_result skipped(std::string why) { return {"skipped", {}, std::move(why)}; }

check_result answered(std::string answer, std::string detail, std::error_code ec) {
  check_result r{"answered", ec, std::move(detail)};
  r.answer = std::move(answer);
  return r;
}

std::string describe(const std::error_code& ec) {
  for (const auto c : {portres::condition::not_supported, portres::condition::access_denied, portres::condition::in_use,
                       portres::condition::aborted, portres::condition::invalid_argument, portres::condition::exhausted}) {
    if (ec == c) return ec.message() + " (" + portres::make_error_condition(c).message() + ")";
  }
  return ec.message();
}

check_result failed_or_unsupported(std::error_code ec, const std::string& what) {
  if (ec == portres::condition::not_supported) return {"not_supported", ec, what + ": " + describe(ec)};
  return fail(ec, what + ": " + describe(ec));
}

check_result failed_unless_sync_unsupported(std::error_code ec, const std::string& what, bool sync_unsupported) {
  if (sync_unsupported || ec != portres::condition::not_supported) return failed_or_unsupported(ec, what);
  return fail(ec, what + ": " + describe(ec) +
                      ", although the synchronous acquire of this run did not answer \"not supported\"");
}

std::optional<int> os_code(const std::error_code& ec) {
  if (!ec) return std::nullopt;
  const auto& c = ec.category();
  if (c == std::system_category() || c == std::generic_category() || c == asio::error::get_system_category()) {
    return ec.value();
  }
  return std::nullopt;
}

int raw_code(const portres::detail::os_trace::call& c) {
  return c.completion ? static_cast<int>(*c.completion) : c.immediate;
}

void record_call(const char* what, std::uint64_t socket, int code) {
  const std::error_code result = code ? std::error_code(code, std::system_category()) : std::error_code();
  const auto id = portres::detail::os_trace::begin({what, socket, false, code, std::nullopt, 0, result});
  portres::detail::os_trace::finish(id, std::nullopt, 0, result);
}

namespace {

// The OS's own code for the check's error: the raw code of the OS call that
// answered it (the completion port's Win32 code, or the call's Winsock
// code), else the error's own value when it is an OS code; null when portres
// found the failure without asking the OS.
std::optional<int> os_error_of(const check_result& r) {
  if (r.os_error) return r.os_error;
  if (!r.ec) return std::nullopt;
  for (auto it = r.os_calls.rbegin(); it != r.os_calls.rend(); ++it) {
    if (it->result == r.ec && raw_code(*it) != 0) return raw_code(*it);
  }
  return os_code(r.ec);
}

// The OS build the report comes from: "10.0.19045" on Windows (RtlGetVersion
// does not lie about the version as GetVersionEx does), the kernel release on Linux.
std::string os_build() {
#if defined(_WIN32)
  using rtl_get_version_fn = LONG(WINAPI*)(OSVERSIONINFOW*);
  const HMODULE ntdll = ::GetModuleHandleW(L"ntdll.dll");
  auto get = ntdll ? reinterpret_cast<rtl_get_version_fn>(reinterpret_cast<void*>(::GetProcAddress(ntdll, "RtlGetVersion")))
                   : nullptr;
  OSVERSIONINFOW v{};
  v.dwOSVersionInfoSize = sizeof v;
  if (!get || get(&v) != 0) return "unknown";
  return std::to_string(v.dwMajorVersion) + "." + std::to_string(v.dwMinorVersion) + "." + std::to_string(v.dwBuildNumber);
#else
  utsname u{};
  return ::uname(&u) == 0 ? u.release : "unknown";
#endif
}

std::string optional_json(const std::optional<long long>& v) { return v ? std::to_string(*v) : "null"; }

std::string calls_json(const std::vector<portres::detail::os_trace::call>& calls) {
  std::string out = "[";
  for (std::size_t i = 0; i < calls.size(); ++i) {
    const auto& c = calls[i];
    out += std::string(i ? "," : "") + "{\"call\":" + json_string(c.what) + ",\"socket\":" + std::to_string(c.socket) +
           ",\"overlapped\":" + (c.overlapped ? "true" : "false") + ",\"immediate\":" + std::to_string(c.immediate) +
           ",\"completion\":" + (c.completion ? std::to_string(*c.completion) : std::string("null")) +
           ",\"bytes\":" + std::to_string(c.bytes) + ",\"error\":" + std::to_string(c.result.value()) +
           ",\"category\":" + json_string(c.result ? c.result.category().name() : "") + "}";
  }
  return out + "]";
}

// error/category/message: what the check saw; os_error: the OS's own code.
std::string check_json(const check_result& r) {
  const auto os = os_error_of(r);
  return "{\"name\":" + json_string(r.name) + ",\"result\":" + json_string(r.result) +
         ",\"os_error\":" + optional_json(os ? std::optional<long long>(*os) : std::nullopt) +
         ",\"error\":" + std::to_string(r.ec.value()) + ",\"category\":" + json_string(r.ec ? r.ec.category().name() : "") +
         ",\"message\":" + json_string(r.ec ? r.ec.message() : "") +
         ",\"pending\":" + (r.pending ? (*r.pending ? "true" : "false") : "null") +
         ",\"answer\":" + (r.answer ? json_string(*r.answer) : std::string("null")) +
         ",\"elapsed_ms\":" + optional_json(r.elapsed_ms) + ",\"detail\":" + json_string(r.detail) +
         ",\"os_calls\":" + calls_json(r.os_calls) + "}";
}

} // namespace
} // namespace selftest_detail

int selftest(bool json) {
  using namespace selftest_detail;
  // The native backend, also where automatic selection would not pick it
  // (Wine): the point is what this OS answers.
  std::error_code selected;
  portres::select_backend(portres::backend_kind::native, selected);
  const auto caps = portres::capabilities();
  portres::detail::os_trace::enable(true);
  auto owned_io = std::make_unique<asio::io_context>();
  auto& io = *owned_io;
  int failures = 0;
  // Each line as its check completes, flushed: a check that hangs is the one
  // after the last line. With --json the JSON document comes whole at the
  // end, and the progress lines go to stderr.
  auto results = run_checks(io, [&](const check_result& r) {
    failures += r.result == "fail";
    if (json) {
      std::fprintf(stderr, "selftest: %-36s %s\n", r.name.c_str(), r.result.c_str());
      std::fflush(stderr);
      return;
    }
    const auto os = os_error_of(r);
    std::string codes;
    if (r.ec) codes += " [" + std::string(r.ec.category().name()) + ":" + std::to_string(r.ec.value()) + "]";
    if (os) codes += " [os error " + std::to_string(*os) + "]";
    const std::string answer = r.answer ? "answer: " + *r.answer + "; " : "";
    std::printf("%-14s %-36s %s%s%s\n", r.result.c_str(), r.name.c_str(), answer.c_str(), r.detail.c_str(), codes.c_str());
    std::fflush(stdout);
  });
  const char* backend = portres::to_string(portres::active_backend());
  if (json) {
    std::string out = "{\"selftest\":2,\"os\":" + json_string(caps.platform) + ",\"os_build\":" + json_string(os_build()) +
                      ",\"backend\":" + json_string(backend) +
                      ",\"backend_selection\":" + json_string(selected ? selected.message() : "native") +
                      ",\"native_runtime\":" + (caps.native_runtime ? "true" : "false") +
                      ",\"native_runtime_reason\":" + json_string(caps.native_runtime_reason) + ",\"checks\":[";
    for (std::size_t i = 0; i < results.size(); ++i) out += std::string(i ? "," : "") + check_json(results[i]);
    std::printf("%s],\"failed\":%d}\n", out.c_str(), failures);
  } else {
    std::printf("os: %s (build %s); backend: %s; %d check(s) failed\n", caps.platform.c_str(), os_build().c_str(), backend,
                failures);
  }
  std::fflush(stdout);
  if (!end_within(std::move(owned_io), check_bound)) {
    std::fprintf(stderr, "selftest: an operation given up on is still pending; the process exit ends it\n");
  }
  return failures ? 1 : 0;
}

} // namespace cli
