#include "loadgen/lane.hpp"

#include "common/endpoints.hpp"
#include "common/net.hpp"
#include "common/scoped_count.hpp"
#include "loadgen/reply.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <algorithm>

namespace loadgen {

namespace {

using asio::redirect_error;
using asio::use_awaitable;

// How long the end may take: what is in flight at the end is cut off (reset and
// cancelled) and unwinds at once, except a pooled connect, which cannot be
// cancelled once under way; one still pending after this is abandoned with the
// io_context. Either way it is counted in in_flight_at_end, not as done.
constexpr auto drain = std::chrono::milliseconds(250);

double micros(clock_type::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

std::unique_ptr<portres::socket_pool<tcp>> make_pool(asio::io_context& io, const portres::runtime_reservation& block,
                                                     const settings& s, std::size_t workers) {
  portres::socket_pool<tcp>::options o;
  o.policy = s.policy;
  o.low_water = workers;
  o.high_water = workers * 2;
  o.max_waiters = workers * 2;
  // Client-closes-first churn leaves each port in TIME_WAIT for 60 s. On Linux
  // the client sets SO_REUSEADDR (net.hpp) so the pool can bind such a port
  // again, and with TCP timestamps on connect() takes over the TIME_WAIT
  // 4-tuple at once (tcp_tw_reuse governs only autobind, not an explicitly
  // bound socket). On Windows clients set nothing (SO_REUSEADDR would let
  // another socket steal the port).
  o.configure = samples::configure_client_socket;
  return std::make_unique<portres::socket_pool<tcp>>(io.get_executor(), block,
                                                     samples::pool_sources(s.sources, s.targets.front()), o);
}

} // namespace

void counts::merge(const counts& o) {
  connections += o.connections;
  bytes += o.bytes;
  held += o.held;
  dropped += o.dropped;
  in_flight_at_end += o.in_flight_at_end;
  errors.merge(o.errors);
  drops.merge(o.drops);
  connect_us.merge(o.connect_us);
  request_us.merge(o.request_us);
  targets.resize(std::max(targets.size(), o.targets.size()));
  for (std::size_t i = 0; i < o.targets.size(); ++i) {
    targets[i].connections += o.targets[i].connections;
    targets[i].errors += o.targets[i].errors;
    targets[i].held += o.targets[i].held;
  }
  last_open = std::max(last_open, o.last_open);
}

namespace {
/// Connections cut off by the end of the run are reset (RST), so a run
/// leaves no TIME_WAIT behind and can be repeated at once on the same ports.
void reset_on_close(tcp::socket& socket) {
  std::error_code ignored;
  if (socket.is_open()) socket.set_option(asio::socket_base::linger(true, 0), ignored);
}
} // namespace

/// A connection from the pool or a plain socket (--ports ephemeral).
struct lane::connection {
  portres::pooled_socket<tcp> pooled;
  std::unique_ptr<tcp::socket> plain;
  connection() = default;
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  /// Closes the plain socket explicitly: Asio's socket destructor turns a linger set by
  /// reset_on_close off again (so as not to block), which would close with FIN, not RST.
  /// (The pool closes its sockets explicitly.)
  ~connection() {
    std::error_code ignored;
    if (plain) plain->close(ignored);
  }
  tcp::socket& socket() { return pooled ? pooled.socket() : *plain; }
  /// At the end of the run: reset rather than close.
  void cut_off() {
    if (pooled) reset_on_close(pooled.socket());
    if (plain) reset_on_close(*plain);
  }
};

lane::lane(const settings& s, std::size_t index, std::size_t workers, std::size_t first, std::size_t share,
           const portres::runtime_reservation* block, schedule& pace, clock_type::time_point end)
    : s_(s), index_(index), workers_(workers), first_(first), share_(share), pace_(pace), end_(end) {
  total_.targets.resize(s.targets.size());
  interval_.targets.resize(s.targets.size());
  if (block) pool_ = make_pool(io_, *block, s, workers);
}

lane::~lane() = default;

void lane::run() {
  at_end_.expires_at(end_);
  at_end_.async_wait([this](std::error_code ec) {
    if (!ec) stop();
  });
  const std::size_t n = s_.hold ? std::min(workers_, share_) : workers_;
  for (std::size_t i = 0; i < n; ++i) asio::co_spawn(io_, s_.hold ? opener() : churn_worker(), asio::detached);
  // Until the end, then until every coroutine has unwound, but never past `drain` after
  // the end (stop() moves it for an early end). The pool's own work is not waited for.
  deadline_ = end_ + drain;
  while ((!stopping_ || live_ > 0) && !io_.stopped() && clock_type::now() < deadline_) io_.run_one_until(deadline_);
}

void lane::finish() {
  asio::post(io_, [this] {
    if (!stopping_) stop();
  });
}

void lane::stop() {
  if (stopping_) return; // the end and finish() both came
  stopping_ = true;
  deadline_ = std::min(deadline_, clock_type::now() + drain);
  record([&](counts& t) { t.in_flight_at_end = in_flight_; });
  at_end_.cancel();
  if (pool_) pool_->close(); // its waiters complete with aborted
  for (auto* socket : open_) {
    reset_on_close(*socket);
    std::error_code ignored;
    socket->cancel(ignored);
  }
}

template <class F>
void lane::record(F&& f) {
  std::lock_guard lock(mutex_);
  f(total_);
  f(interval_);
}

void lane::count_failure(std::size_t target, const std::error_code& ec) { count_failure(target, samples::error_kind(ec)); }

void lane::count_failure(std::size_t target, const std::string& kind) {
  record([&](counts& t) {
    t.errors.add(kind);
    ++t.targets[target].errors;
  });
}

counts lane::total() const {
  std::lock_guard lock(mutex_);
  return total_;
}

counts lane::take_interval() {
  std::lock_guard lock(mutex_);
  counts out = std::move(interval_);
  interval_ = counts{};
  interval_.targets.resize(s_.targets.size());
  out.errors = total_.errors;
  out.held = total_.held;
  return out;
}

asio::awaitable<bool> lane::wait_for_slot(asio::steady_timer& timer) {
  if (!pace_.paced()) co_return true;
  const auto slot = pace_.next();
  if (slot >= end_) co_return false;
  timer.expires_at(slot);
  std::error_code ignored;
  co_await timer.async_wait(redirect_error(use_awaitable, ignored));
  co_return !stopping_;
}

asio::awaitable<std::error_code> lane::open(connection& c, std::size_t target, std::size_t source) {
  std::error_code ec;
  const auto& peer = s_.targets[target];
  if (pool_) {
    // The pool's connect retries on another port when the kernel says the
    // 4-tuple is still taken (EADDRNOTAVAIL: the last connection closing).
    c.pooled = co_await pool_->async_connect(peer, redirect_error(use_awaitable, ec));
    co_return ec;
  }
  c.plain = std::make_unique<tcp::socket>(io_);
  c.plain->open(peer.protocol(), ec);
  if (!ec && !s_.sources.empty()) samples::bind_source(*c.plain, s_.sources[source], ec);
  if (ec) co_return ec;
  open_.insert(c.plain.get());
  co_await c.plain->async_connect(peer, redirect_error(use_awaitable, ec));
  open_.erase(c.plain.get());
  co_return ec;
}

asio::awaitable<void> lane::churn_worker() {
  static const std::string request = "GET / HTTP/1.0\r\nHost: loadgen\r\n\r\n";
  const samples::scoped_count alive(live_);
  asio::steady_timer timer(io_);
  const auto targets = s_.targets.size(), sources = std::max<std::size_t>(1, s_.sources.size());
  while (!stopping_ && clock_type::now() < end_) {
    if (!co_await wait_for_slot(timer)) break;
    const std::size_t n = next_++ + index_;
    const std::size_t target = n % targets, source = n / targets % sources;
    connection c;
    const samples::scoped_count flying(in_flight_);
    const auto start = clock_type::now();
    auto ec = co_await open(c, target, source);
    if (stopping_) { // cancelled by the end of the run: not a failure
      c.cut_off();
      break;
    }
    if (ec) {
      count_failure(target, ec);
      continue;
    }
    const double connect_us = micros(clock_type::now() - start);
    auto& socket = c.socket();
    std::uint64_t bytes = 0;
    char buf[4096];
    open_.insert(&socket);
    reply_head head;
    if (s_.http) {
      co_await asio::async_write(socket, asio::buffer(request), redirect_error(use_awaitable, ec));
      // The client closes first (client, rst): read until the final status line is judged, then close or
      // reset, whether or not the server would close; server: read the whole reply, until the server closes.
      // The end of the run stops it too: a server that streams without end completes every read at once,
      // leaving nothing pending for the end to cancel.
      while (!ec && !stopping_ && !(s_.close != close_style::server && head.settled())) {
        const auto got = co_await socket.async_read_some(asio::buffer(buf), redirect_error(use_awaitable, ec));
        bytes += got;
        head.append({buf, got});
      }
      if (ec == asio::error::eof) ec.clear();
    } else if (s_.close == close_style::server) {
      std::error_code ignored; // the server closing is the point
      bytes += co_await socket.async_read_some(asio::buffer(buf), redirect_error(use_awaitable, ignored));
    }
    open_.erase(&socket);
    if (stopping_) {
      c.cut_off();
      break;
    }
    if (s_.close == close_style::rst) reset_on_close(socket); // whatever the reply was
    if (ec) {
      count_failure(target, ec);
      continue;
    }
    if (auto kind = s_.http ? head.failure() : std::string(); !kind.empty()) { // a 5xx, or no status line
      count_failure(target, kind);
      continue;
    }
    const double request_us = micros(clock_type::now() - start);
    record([&](counts& t) {
      ++t.connections;
      ++t.targets[target].connections;
      t.bytes += bytes;
      t.connect_us.add_us(connect_us);
      if (s_.http) t.request_us.add_us(request_us);
    });
  }
}

asio::awaitable<void> lane::opener() {
  const samples::scoped_count alive(live_);
  asio::steady_timer timer(io_);
  const auto targets = s_.targets.size(), sources = std::max<std::size_t>(1, s_.sources.size());
  while (!stopping_ && next_ < share_) {
    // Connection g goes to target g % targets, from source g / targets % sources:
    // every (target, source) pair gets its share.
    const std::size_t g = first_ + next_++;
    if (!co_await wait_for_slot(timer)) break;
    const std::size_t target = g % targets, source = g / targets % sources;
    auto c = std::make_shared<connection>();
    const auto start = clock_type::now();
    std::error_code ec;
    {
      const samples::scoped_count flying(in_flight_);
      ec = co_await open(*c, target, source);
    }
    if (stopping_) {
      c->cut_off();
      break;
    }
    const auto now = clock_type::now();
    if (ec) {
      count_failure(target, ec);
      continue;
    }
    record([&](counts& t) {
      ++t.connections;
      ++t.held;
      ++t.targets[target].connections;
      ++t.targets[target].held;
      t.connect_us.add_us(micros(now - start));
      t.last_open = now;
    });
    asio::co_spawn(io_, keep(std::move(c), target), asio::detached);
  }
}

asio::awaitable<void> lane::keep(std::shared_ptr<connection> c, std::size_t target) {
  const samples::scoped_count alive(live_);
  if (stopping_) { // the run ended before this connection's watch began
    c->cut_off();
    co_return;
  }
  auto& socket = c->socket();
  std::error_code ec;
  char buf[256];
  open_.insert(&socket);
  while (!ec && !stopping_) {
    const auto n = co_await socket.async_read_some(asio::buffer(buf), redirect_error(use_awaitable, ec));
    if (n) record([&](counts& t) { t.bytes += n; });
  }
  open_.erase(&socket);
  if (stopping_) co_return; // held until the end: it counts as held
  record([&](counts& t) {
    --t.held;
    --t.targets[target].held;
    ++t.dropped;
    t.drops.add(ec);
  });
}

} // namespace loadgen
