// Which Windows backend runs, and what this machine supports.
#include "backend.hpp"
#include "platform.hpp"
#include "win/native_engine.hpp"
#include "win/wine.hpp"

#include <windows.h>

namespace portres::detail {
namespace {

// Port reservations were unreliable before Windows 10 1809 / Server 2019.
constexpr DWORD first_reliable_build = 17763;

struct os_facts {
  DWORD build = 0;
  std::string wine; // Wine's version when running under Wine
};

os_facts facts() {
  os_facts f;
  f.wine = win::wine_version();
  const HMODULE ntdll = ::GetModuleHandleW(L"ntdll.dll");
  if (!ntdll) return f;
  using rtl_get_version_fn = LONG(WINAPI*)(OSVERSIONINFOW*);
  if (auto get = reinterpret_cast<rtl_get_version_fn>(reinterpret_cast<void*>(::GetProcAddress(ntdll, "RtlGetVersion")))) {
    OSVERSIONINFOW v{};
    v.dwOSVersionInfoSize = sizeof v;
    if (get(&v) == 0) f.build = v.dwBuildNumber;
  }
  return f;
}

bool persistent_functions_present(std::string& reason) {
  if (win::iphlpapi_function("CreatePersistentTcpPortReservation")) return true;
  reason = "iphlpapi.dll does not export CreatePersistentTcpPortReservation";
  return false;
}

} // namespace

backend* native_backend(std::string&) { return &win::native_engine(); }

capability_report os_capabilities() {
  const auto f = facts();
  capability_report report;
  report.platform = f.wine.empty() ? platform::name() : "Wine " + f.wine + " (reports " + platform::name() + ")";
  if (!f.wine.empty()) {
    report.native_runtime_reason = "Wine " + f.wine + " answers the port-reservation IOCTLs with 'not supported'";
  } else if (f.build < first_reliable_build) {
    report.native_runtime_reason = "Windows build " + std::to_string(f.build) + " < " +
                                   std::to_string(first_reliable_build) + " (port reservations unreliable before)";
  } else {
    report.native_runtime = true;
  }
  std::string reason;
  report.persistent = persistent_functions_present(reason);
  if (!report.persistent) report.persistent_reason = f.wine.empty() ? reason : reason + " (Wine " + f.wine + ")";
  // Windows itself keeps reserved ports from automatic allocation.
  report.kernel_enforcement = report.native_runtime;
  if (!report.kernel_enforcement) {
    report.kernel_enforcement_reason = "the fallback backend coordinates within this process only";
  }
  return report;
}

} // namespace portres::detail
