#include "clients.hpp"

#include <asio/socket_base.hpp>

#include <cstdio>
#include <iostream>
#include <string>

#include <unistd.h>


namespace portres_bench {

const char* to_string(client_kind k) {
  switch (k) {
  case client_kind::autobind: return "autobind";
  case client_kind::explicit_bind: return "explicit";
  case client_kind::pool: return "pool";
  }
  return "?";
}

client::client(asio::io_context& io, const client_options& o, std::error_code& ec) : io_(io), o_(o) {
  ec.clear();
  if (o_.kind != client_kind::pool) return;
  block_ = portres::acquire(io.get_executor(), portres::protocol::tcp, portres::port_range::wildcard(o_.block), ec);
  if (ec) return;
  portres::socket_pool<tcp>::options po;
  po.low_water = o_.low_water;
  po.high_water = o_.high_water;
  po.policy = o_.policy;
  // As a hand-written client would: SO_REUSEADDR lets a port whose last
  // connection is in TIME_WAIT be bound again.
  po.configure = [](tcp::socket& s, std::error_code& e) { s.set_option(asio::socket_base::reuse_address(true), e); };
  pool_ = std::make_unique<portres::socket_pool<tcp>>(io.get_executor(), block_, asio::ip::address_v4::loopback(), po);
  const auto deadline = clock_type::now() + std::chrono::seconds(10);
  while (pool_->stats().ready < o_.high_water && clock_type::now() < deadline) io.run_one_for(std::chrono::milliseconds(100));
}

client::~client() {
  if (pool_) pool_->close();
  io_.poll();
}

const char* client::name() const { return to_string(o_.kind); }

namespace {
void finish(tcp::socket& s, close_kind how) {
  std::error_code ignored;
  if (how == close_kind::rst) s.set_option(asio::socket_base::linger(true, 0), ignored);
  s.close(ignored);
}
} // namespace

std::error_code client::connect_once(const tcp::endpoint& server, clock_type::duration& until_connected) {
  const auto start = clock_type::now();
  std::error_code ec;
  switch (o_.kind) {
  case client_kind::autobind: {
    tcp::socket s(io_);
    s.open(tcp::v4(), ec);
    if (!ec) s.connect(server, ec);
    until_connected = clock_type::now() - start;
    finish(s, o_.close);
    return ec;
  }
  case client_kind::explicit_bind: {
    tcp::socket s(io_);
    s.open(tcp::v4(), ec);
    if (!ec) s.set_option(asio::socket_base::reuse_address(true), ec);
    // The next port of the span; a port still taken by a live socket is skipped.
    for (std::uint32_t tries = 0; !ec && tries < o_.explicit_ports.count(); ++tries) {
      const auto port = static_cast<std::uint16_t>(o_.explicit_ports.first + next_++ % o_.explicit_ports.count());
      s.bind({asio::ip::address_v4::loopback(), port}, ec);
      if (ec != std::errc::address_in_use) break;
    }
    if (!ec) s.connect(server, ec);
    until_connected = clock_type::now() - start;
    finish(s, o_.close);
    return ec;
  }
  case client_kind::pool: {
    auto got = pool_->try_get(ec);
    const auto deadline = start + std::chrono::seconds(1);
    while (ec == std::errc::operation_would_block && clock_type::now() < deadline) {
      io_.run_one_for(std::chrono::milliseconds(1));
      got = pool_->try_get(ec);
    }
    if (!ec) got->connect(server, ec);
    until_connected = clock_type::now() - start;
    if (got) finish(got.socket(), o_.close);
    got = {};
    io_.poll(); // the refill work the pool has queued runs on this thread too
    return ec;
  }
  }
  return ec;
}

int syscalls_main(const std::string& kind, std::uint32_t count) {
  prepare_environment();
  // The sink runs in a child process, so an strace attached to this process
  // counts only the client's system calls.
  const sink_server sink;
  const tcp::endpoint server = sink.endpoint();

  client_options o;
  if (kind == "autobind") o.kind = client_kind::autobind;
  else if (kind == "explicit") o.kind = client_kind::explicit_bind;
  else if (kind == "pool") o.kind = client_kind::pool;
  else {
    std::fprintf(stderr, "--syscalls must be autobind, explicit or pool\n");
    return 2;
  }
  asio::io_context io;
  auto busy = asio::make_work_guard(io);
  std::error_code ec;
  int status = 0;
  {
    client c(io, o, ec);
    if (ec) {
      std::fprintf(stderr, "setup failed: %s\n", ec.message().c_str());
      status = 1;
    } else {
      clock_type::duration ignored{};
      for (int i = 0; i < 100; ++i) (void)c.connect_once(server, ignored); // warm up
      std::printf("ready %d\n", static_cast<int>(::getpid()));
      std::fflush(stdout);
      std::string line;
      std::getline(std::cin, line);
      failure_counts failures;
      for (std::uint32_t i = 0; i < count; ++i) {
        if (const auto e = c.connect_once(server, ignored)) failures.add(e);
      }
      std::printf("done %u connections, %llu failures\n", count, static_cast<unsigned long long>(failures.total()));
      std::fflush(stdout);
      std::getline(std::cin, line); // strace detaches before teardown
    }
  }
  return status;
}

} // namespace portres_bench
