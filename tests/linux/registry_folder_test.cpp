// The per-user registry's folder (linux/registry.hpp): without a usable one,
// runtime reservations fail closed with a clear error instead of
// coordinating only inside one process, and a folder others could rename
// away is not used. Fresh processes as real users (setpriv).
#include "linux/probe_support.hpp"

#include "portres/linux_error.hpp"

#include <string>

#include <sys/stat.h>
#include <unistd.h>

using namespace portres;
using namespace portres_test;

namespace {

const std::string unavailable =
    "error portres.linux " + std::to_string(static_cast<int>(linux_error::registry_unavailable)) + " ";

} // namespace

TEST_CASE("per-user registry: without a usable folder, two processes of one user are never given the same block") {
  if (const char* why = probe_skip_reason()) PORTRES_SKIP(why);
  // XDG_RUNTIME_DIR unset: no folder at all.
  for (const char* backend : {"auto", "native"}) {
    const std::vector<std::string> env{"-XDG_RUNTIME_DIR", "-PORTRES_RUNTIME_DIR", "PORTRES_BROKER=off",
                                       std::string("PORTRES_BACKEND=") + backend};
    probe first(64010, env), second(64010, env);
    const auto a = first.ask("acquire tcp 62000 10");
    const auto b = second.ask("acquire tcp 62000 10");
    CHECK_MESSAGE(a.rfind(unavailable, 0) == 0, backend << ": " << a);
    CHECK_MESSAGE(b.rfind(unavailable, 0) == 0, backend << ": " << b);
    CHECK_MESSAGE(a.find("XDG_RUNTIME_DIR") != std::string::npos, a);
  }
  // A folder another user created first (so owns): refused, not shared.
  const auto theirs = folder_of(64011, "theirs");
  probe first(64010, {"PORTRES_RUNTIME_DIR=" + theirs, "PORTRES_BROKER=off"});
  probe second(64010, {"PORTRES_RUNTIME_DIR=" + theirs, "PORTRES_BROKER=off"});
  const auto a = first.ask("acquire tcp 62000 10");
  const auto b = second.ask("acquire tcp 62000 10");
  CHECK_MESSAGE(a.rfind(unavailable, 0) == 0, a);
  CHECK_MESSAGE(b.rfind(unavailable, 0) == 0, b);
}

TEST_CASE("per-user registry: a folder inside one another user may rename is not used, not even by root") {
  if (const char* why = probe_skip_reason()) PORTRES_SKIP(why);
  // uid 64012 owns the parent: it could rename root's registry away while
  // root's processes hold it open, and put a fresh one in its place (two
  // registries, one block granted twice).
  const auto parent = folder_of(64012, "someone-elses");
  ::chmod(parent.c_str(), 0755);
  const auto dir = parent + "/portres";
  probe root(0, {"PORTRES_RUNTIME_DIR=" + dir, "PORTRES_BROKER=off"});
  const auto answer = root.ask("acquire tcp 62000 10");
  CHECK_MESSAGE(answer.rfind(unavailable, 0) == 0, answer);
  // The same folder under a parent of root's own is fine.
  const auto own = (scratch_dir() / "roots").string();
  ::mkdir(own.c_str(), 0755);
  probe fine(0, {"PORTRES_RUNTIME_DIR=" + own + "/portres", "PORTRES_BROKER=off"});
  const auto ok = fine.ask("acquire tcp 62000 10");
  CHECK_MESSAGE(ok.rfind("ok", 0) == 0, ok);
}
