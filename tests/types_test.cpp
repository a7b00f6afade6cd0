#include "portres/types.hpp"

#include "portres/error.hpp"

#include "support.hpp"

#include <sstream>
#include <unordered_set>

using namespace portres;

TEST_CASE("protocol prints its name") {
  CHECK(std::string(to_string(protocol::tcp)) == "tcp");
  std::ostringstream os;
  os << protocol::udp;
  CHECK(os.str() == "udp");
}

TEST_CASE("port_range: specific block") {
  constexpr port_range r{5000, 20};
  static_assert(r.last() == 5019);
  CHECK_FALSE(r.is_wildcard());
  CHECK(r.contains(5000));
  CHECK(r.contains(5019));
  CHECK_FALSE(r.contains(4999));
  CHECK_FALSE(r.contains(5020));
  CHECK_FALSE(r.validate());
  CHECK(to_string(r) == "5000-5019");
}

TEST_CASE("port_range: wildcard block") {
  constexpr auto r = port_range::wildcard(20);
  CHECK(r.is_wildcard());
  CHECK(r.count() == 20);
  CHECK_FALSE(r.contains(0));
  CHECK_FALSE(r.validate());
  CHECK(r.validate(false) == error::wildcard_not_allowed);
  CHECK(r.validate(false) == condition::invalid_argument);
  CHECK(to_string(r) == "*x20");
}

TEST_CASE("port_range: validation names the problem") {
  CHECK(port_range(5000, 0).validate() == error::zero_count);
  CHECK(port_range::wildcard(0).validate() == error::zero_count);
  CHECK(port_range(65535, 1).validate() == std::error_code{});
  CHECK(port_range(65535, 2).validate() == error::range_past_end);
  CHECK(port_range(1, 65535).validate() == std::error_code{});
  CHECK(port_range(1, 65536).validate() == error::range_past_end);
  CHECK(port_range::wildcard(65536).validate() == error::range_past_end);
  CHECK(port_range(60000, 10000).validate().message().find("65535") != std::string::npos);
  CHECK(port_range(5000, 0).validate().message().find("zero") != std::string::npos);
}

TEST_CASE("port_range: overlap") {
  const port_range a{5000, 10};
  CHECK(a.overlaps(port_range{5009, 1}));
  CHECK(a.overlaps(port_range{4990, 11}));
  CHECK_FALSE(a.overlaps(port_range{5010, 5}));
  CHECK_FALSE(a.overlaps(port_range{4990, 10}));
  CHECK_FALSE(a.overlaps(port_range::wildcard(100)));
}

TEST_CASE("reservation_token: comparable, hashable, printable") {
  const reservation_token a{1234}, b{1234}, c{99};
  CHECK(a == b);
  CHECK(c < a);
  CHECK_FALSE(reservation_token{});
  CHECK(static_cast<bool>(a));
  std::unordered_set<reservation_token> set{a, b, c};
  CHECK(set.size() == 2);
  CHECK(to_string(a) == "0x00000000000004d2");
  std::ostringstream os;
  os << reservation{{5000, 2}, a};
  CHECK(os.str() == "5000-5001 token 0x00000000000004d2");
}
