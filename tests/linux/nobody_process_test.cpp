// The other-user child of the multi-user tests (nobody_process.hpp): its
// answer, and that its child never runs on into the test that forked it.
#include "linux/nobody_process.hpp"

#include "support.hpp"

#include <optional>
#include <stdexcept>

#include <fcntl.h>
#include <unistd.h>

TEST_CASE("nobody_process: ready is setup's answer, as nobody") {
  if (::geteuid() != 0) PORTRES_SKIP("needs root to become another user (nobody)");
  portres_test::nobody_process yes([] { return ::geteuid() == 65534 && ::getegid() == 65534; });
  CHECK(yes.ready());
  portres_test::nobody_process no([] { return false; });
  CHECK_FALSE(no.ready());
}

TEST_CASE("nobody_process: a setup that throws answers not ready, and its child stops there") {
  if (::geteuid() != 0) PORTRES_SKIP("needs root to become another user (nobody)");
  // A child whose setup throws must not unwind into the test that forked it
  // (it would run the rest of the suite as a second copy, as nobody, and the
  // parent would wait for its answer until then).
  int escaped[2];
  REQUIRE(::pipe2(escaped, O_CLOEXEC) == 0);
  const pid_t parent = ::getpid();
  std::optional<bool> ready;
  try {
    portres_test::nobody_process child([]() -> bool { throw std::runtime_error("setup failed"); });
    ready = child.ready();
  } catch (...) {
    if (::getpid() != parent) {
      (void)!::write(escaped[1], "x", 1);
      ::_exit(3);
    }
    throw;
  }
  ::close(escaped[1]);
  char c = 0;
  CHECK(::read(escaped[0], &c, 1) == 0); // no child unwound past its setup
  ::close(escaped[0]);
  CHECK(ready == false);
}
