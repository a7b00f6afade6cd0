// Test entry point. Before any test runs, the process isolates itself:
// portres' registry and store point at fresh temporary folders, and as root
// on Linux the process moves into a private network namespace (loopback up)
// so kernel settings such as ip_local_reserved_ports are never touched on
// the host, and a private mount namespace with its own /run/portresd (the
// fixed folder where portresd and root's registries of a network namespace
// meet), so no daemon of the host is seen and nothing is left there.
#define DOCTEST_CONFIG_IMPLEMENT
#include "support.hpp"
#include "test_watchdog.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#if !defined(_WIN32)
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

namespace portres_test {
namespace {

std::filesystem::path scratch;
bool private_netns = false;

#if !defined(_WIN32)
bool enter_private_namespaces() {
  if (::geteuid() != 0 || ::unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) return false;
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return false;
  ::mkdir("/run/portresd", 0755); // the mount point (an empty folder on the host)
  if (::mount("portres-test", "/run/portresd", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0) return false;
  const int s = ::socket(AF_INET, SOCK_DGRAM, 0);
  if (s < 0) return false;
  ifreq ifr{};
  std::snprintf(ifr.ifr_name, IFNAMSIZ, "lo");
  bool up = ::ioctl(s, SIOCGIFFLAGS, &ifr) == 0;
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  up = up && ::ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
  ::close(s);
  return up;
}
#endif

} // namespace

bool in_private_netns() { return private_netns; }
const std::filesystem::path& scratch_dir() { return scratch; }

} // namespace portres_test

int main(int argc, char** argv) {
  using namespace portres_test;
  namespace fs = std::filesystem;
  scratch = fs::temp_directory_path() /
            ("portres-test-" + std::to_string(std::hash<std::string>{}(std::to_string(std::rand())) ^
                                              static_cast<std::size_t>(fs::file_time_type::clock::now().time_since_epoch().count())));
  fs::create_directories(scratch / "run");
  fs::create_directories(scratch / "state");
#if defined(_WIN32)
  _putenv_s("PORTRES_RUNTIME_DIR", (scratch / "run").string().c_str());
  _putenv_s("PORTRES_STATE_DIR", (scratch / "state").string().c_str());
#else
  ::setenv("PORTRES_RUNTIME_DIR", (scratch / "run").c_str(), 1);
  ::setenv("PORTRES_STATE_DIR", (scratch / "state").c_str(), 1);
  private_netns = enter_private_namespaces();
#endif
  start_watchdog();
  doctest::Context context(argc, argv);
  const int result = context.run();
  std::error_code ignored;
  fs::remove_all(scratch, ignored);
  return result;
}
