// The test process' watchdog: a test case that runs longer than
// PORTRES_TEST_TIMEOUT seconds (default 1200, under ctest's 1500; the Wine
// suite sets 150), or a process that does not exit within that time after its
// last test case, is named on stderr (test case, subcase, last assertion
// reached), the processes it started are killed (Linux) and it ends with
// exit code 124. Without it a hang shows
// as ctest's timeout and nothing else: the test's own output sits in a pipe
// buffer that dies with the process.
#include "test_watchdog.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#if defined(_WIN32)
#include <windows.h>
#else
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <signal.h>
#include <unistd.h>
#endif

namespace portres_test {
namespace {

using clock = std::chrono::steady_clock;

// Never destroyed: the watchdog thread reads it while static destructors run.
struct watch_state {
  std::mutex mutex;
  std::condition_variable wake;
  std::string phase = "starting (before the first test case)";
  std::vector<std::string> subcases;
  std::string last_subcase; // the last one to end, when in none now
  const char* assert_file = nullptr;
  int assert_line = 0;
  clock::time_point since = clock::now();
#if !defined(_WIN32)
  pid_t owner = ::getpid();
#endif
};

watch_state& state() {
  static auto* s = new watch_state;
  return *s;
}

// The state to record progress in, or null in a child a test forked: fork
// copies only the forking thread, so the mutex may stay held by a watchdog
// thread that does not exist there, and a doctest assertion in the child
// (even a passing one, e.g. REQUIRE(pid >= 0) after fork) would hang it.
watch_state* recorder() {
  auto& s = state();
#if !defined(_WIN32)
  if (::getpid() != s.owner) return nullptr;
#endif
  return &s;
}

void set_phase(std::string phase) {
  auto* r = recorder();
  if (!r) return;
  auto& s = *r;
  std::lock_guard lock(s.mutex);
  s.phase = std::move(phase);
  s.subcases.clear();
  s.last_subcase.clear();
  s.assert_file = nullptr;
  s.since = clock::now();
}

#if !defined(_WIN32)
// Kills the processes a hung test started (children, theirs, ...), found by
// their parent pid in /proc; true if there were any.
bool kill_descendants_once() {
  std::map<pid_t, std::vector<pid_t>> children;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const auto name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    std::getline(stat, line);
    const auto close = line.rfind(')'); // the command may contain spaces and parentheses
    if (close == std::string::npos) continue;
    char state = 0;
    long parent = 0;
    if (std::sscanf(line.c_str() + close + 1, " %c %ld", &state, &parent) != 2) continue;
    children[static_cast<pid_t>(parent)].push_back(static_cast<pid_t>(std::stol(name)));
  }
  bool any = false;
  std::vector<pid_t> pending{::getpid()};
  while (!pending.empty()) {
    const pid_t p = pending.back();
    pending.pop_back();
    for (const pid_t child : children[p]) {
      any = true;
      ::kill(child, SIGKILL);
      pending.push_back(child);
    }
  }
  return any;
}

// Until none is left (the hung test may still be starting some), so that
// none outlives the test; bounded.
void kill_descendants() {
  for (int round = 0; round < 50 && kill_descendants_once(); ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}
#endif

// Ends the process at once: no exit handlers (they may be what hangs), and
// on Windows not even the loader lock ExitProcess takes.
[[noreturn]] void end_process(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
#if defined(_WIN32)
  ::TerminateProcess(::GetCurrentProcess(), static_cast<UINT>(code));
#else
  kill_descendants();
#endif
  std::_Exit(code);
}

// Records where the run is; the watchdog reports it.
class progress_listener final : public doctest::IReporter {
public:
  explicit progress_listener(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats&) override { set_phase("exiting (after the last test case)"); }
  void test_case_start(const doctest::TestCaseData& tc) override {
    set_phase(std::string("test case \"") + tc.m_name + "\"");
  }
  void test_case_reenter(const doctest::TestCaseData&) override {
    auto* r = recorder();
    if (!r) return;
    auto& s = *r;
    std::lock_guard lock(s.mutex);
    s.subcases.clear(); // the time limit covers the whole test case, every subcase
  }
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature& sub) override {
    auto* r = recorder();
    if (!r) return;
    auto& s = *r;
    std::lock_guard lock(s.mutex);
    s.subcases.emplace_back(sub.m_name.c_str());
  }
  void subcase_end() override {
    auto* r = recorder();
    if (!r) return;
    auto& s = *r;
    std::lock_guard lock(s.mutex);
    if (s.subcases.empty()) return;
    s.last_subcase = s.subcases.back();
    s.subcases.pop_back();
  }
  void log_assert(const doctest::AssertData& a) override {
    auto* r = recorder();
    if (!r) return;
    auto& s = *r;
    std::lock_guard lock(s.mutex);
    s.assert_file = a.m_file;
    s.assert_line = a.m_line;
  }
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};

std::chrono::seconds limit_from_environment() {
  if (const char* text = std::getenv("PORTRES_TEST_TIMEOUT")) {
    char* end = nullptr;
    const long value = std::strtol(text, &end, 10);
    if (end != text && *end == '\0' && value >= 0) return std::chrono::seconds(value);
    std::fprintf(stderr, "watchdog: ignoring PORTRES_TEST_TIMEOUT=\"%s\" (not a number of seconds)\n", text);
  }
  return std::chrono::seconds(1200);
}

void watch(std::chrono::seconds limit) {
  auto& s = state();
  std::unique_lock lock(s.mutex);
  while (true) {
    s.wake.wait_for(lock, std::chrono::milliseconds(500));
    const auto elapsed = clock::now() - s.since;
    if (elapsed < limit) continue;
    std::string where = s.phase;
    for (const auto& sub : s.subcases) where += ", subcase \"" + sub + "\"";
    if (s.subcases.empty() && !s.last_subcase.empty()) where += ", after subcase \"" + s.last_subcase + "\" ended";
    std::string last = s.assert_file ? std::string(s.assert_file) + ":" + std::to_string(s.assert_line)
                                     : std::string("none yet");
    std::fprintf(stderr, "\nWATCHDOG: %s still running after %lld s (PORTRES_TEST_TIMEOUT); last assertion reached: %s\n",
                 where.c_str(), static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(elapsed).count()),
                 last.c_str());
    end_process(124);
  }
}

} // namespace

void start_watchdog() {
  state(); // made here, so its owner is this process, never a forked child
  const auto limit = limit_from_environment();
  if (limit.count() == 0) return; // 0: off (e.g. under a debugger)
  std::thread(watch, limit).detach();
}

} // namespace portres_test

DOCTEST_REGISTER_LISTENER("portres_watchdog", 1, portres_test::progress_listener);
