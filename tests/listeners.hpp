// TCP listeners on loopback that accept every connection and keep it open,
// for tests that hold many connections towards several destinations.
#ifndef PORTRES_TESTS_LISTENERS_HPP
#define PORTRES_TESTS_LISTENERS_HPP

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <deque>
#include <vector>

namespace portres_test {

class listeners {
public:
  listeners(asio::io_context& io, int count, asio::ip::address address = asio::ip::address_v4::loopback()) {
    for (int i = 0; i < count; ++i) {
      acceptors_.emplace_back(io, asio::ip::tcp::endpoint(address, 0));
      accept(acceptors_.back());
    }
  }
  asio::ip::tcp::endpoint at(std::size_t i) const { return acceptors_.at(i).local_endpoint(); }
  std::size_t accepted() const noexcept { return accepted_.size(); }
  /// Closes (resets) the accepted side of the connection from `client_port`
  /// on `address`: the server closes first, so the client's 4-tuple is free
  /// once it closes too (no TIME_WAIT on its side, under Wine too).
  void hang_up(std::uint16_t client_port, const asio::ip::address& address = asio::ip::address_v4::loopback()) {
    for (auto& s : accepted_) {
      std::error_code ec;
      const auto remote = s.remote_endpoint(ec);
      if (ec || remote.port() != client_port || remote.address() != address) continue;
      s.set_option(asio::socket_base::linger(true, 0), ec);
      s.close(ec);
    }
  }

private:
  void accept(asio::ip::tcp::acceptor& a) {
    a.async_accept([this, &a](std::error_code ec, asio::ip::tcp::socket s) {
      if (ec) return;
      accepted_.push_back(std::move(s));
      accept(a);
    });
  }

  std::deque<asio::ip::tcp::acceptor> acceptors_; // stable addresses for the handlers
  std::vector<asio::ip::tcp::socket> accepted_;
};

/// Closes `s` with a reset, so its 4-tuple is free at once (no TIME_WAIT, no FIN_WAIT).
inline void reset(asio::ip::tcp::socket& s) {
  std::error_code ignored;
  s.set_option(asio::socket_base::linger(true, 0), ignored);
  s.close(ignored);
}

} // namespace portres_test

#endif
