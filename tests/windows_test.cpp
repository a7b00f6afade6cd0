#include "portres/windows.hpp"

#include "support.hpp"

#include <array>
#include <cstring>

using namespace portres;

namespace {
template <class T>
std::array<unsigned char, sizeof(T)> bytes_of(const T& value) {
  std::array<unsigned char, sizeof(T)> out{};
  std::memcpy(out.data(), &value, sizeof(T));
  return out;
}
} // namespace

TEST_CASE("INET_PORT_RANGE wire bytes: StartPort network order, NumberOfPorts host order") {
  const auto wire = windows::to_inet_port_range(port_range{5000, 20});
  CHECK(wire.StartPort == 0x8813); // 5000 = 0x1388, stored big-endian
  CHECK(wire.NumberOfPorts == 20);
  const auto raw = bytes_of(wire);
  CHECK(raw == std::array<unsigned char, 4>{0x13, 0x88, 20, 0});
  CHECK(windows::from_inet_port_range(wire) == port_range{5000, 20});
}

TEST_CASE("wildcard range stays StartPort 0") {
  const auto wire = windows::to_inet_port_range(port_range::wildcard(256));
  CHECK(wire.StartPort == 0);
  CHECK(wire.NumberOfPorts == 256);
}

TEST_CASE("INET_PORT_RESERVATION_INSTANCE round trip") {
  const reservation r{{65535, 1}, reservation_token{0x0102030405060708ULL}};
  const auto wire = windows::to_instance(r);
  static_assert(sizeof(wire) == 16);
  const auto raw = bytes_of(wire);
  CHECK(raw[0] == 0xff);
  CHECK(raw[1] == 0xff);
  CHECK(raw[2] == 1);
  CHECK(raw[8] == 0x08); // ULONG64 token is little-endian host order
  CHECK(raw[15] == 0x01);
  CHECK(windows::from_instance(wire) == r);
  CHECK(windows::from_inet_token(windows::to_inet_token(r.token)) == r.token);
}

TEST_CASE("persistent StartPort argument is network order") {
  CHECK(windows::to_network_port(5000) == 0x8813);
  CHECK(windows::from_network_port(0x8813) == 5000);
}
