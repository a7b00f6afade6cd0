// portres_probe: a fresh process using the public API, driven line by line
// on stdin by the Linux trust tests (often started through setpriv as
// another user): each process chooses its registry mode once, so a test that
// needs a new user or a new choice starts a new probe. Answers one line per
// command on stdout; keeps what it acquired until stdin closes.
//   acquire tcp|udp FIRST COUNT   -> "ok FIRST COUNT" | "error CATEGORY VALUE MESSAGE"
//   release INDEX                 -> "ok" | "error ..." (INDEX: 0 for the first acquire)
//   mode                          -> "mode MACHINE_WIDE COORDINATION"
#include "portres/portres.hpp"

#include <asio/io_context.hpp>

#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::string describe(const std::error_code& ec) {
  return "error " + std::string(ec.category().name()) + " " + std::to_string(ec.value()) + " " + ec.message();
}

} // namespace

int main() {
  asio::io_context io;
  std::vector<portres::runtime_reservation> held;
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string command;
    in >> command;
    if (command == "acquire") {
      std::string proto;
      unsigned first = 0, count = 0;
      in >> proto >> first >> count;
      std::error_code ec;
      auto r = portres::acquire(io.get_executor(), proto == "udp" ? portres::protocol::udp : portres::protocol::tcp,
                                portres::port_range(static_cast<std::uint16_t>(first), count), ec);
      if (ec) {
        std::cout << describe(ec) << std::endl;
        continue;
      }
      std::cout << "ok " << r.range().first() << ' ' << r.range().count() << std::endl;
      held.push_back(std::move(r));
    } else if (command == "release") {
      std::size_t index = 0;
      in >> index;
      std::error_code ec;
      if (index < held.size()) held[index].release(ec);
      std::cout << (index >= held.size() ? "error no such reservation" : ec ? describe(ec) : "ok") << std::endl;
    } else if (command == "mode") {
      const auto caps = portres::capabilities();
      std::cout << "mode " << caps.machine_wide << ' ' << caps.coordination << std::endl;
    } else {
      std::cout << "error unknown command" << std::endl;
    }
  }
  return 0;
}
