// Public entry points: argument checks, backend selection, and the default
// asynchronous forms that keep waiting calls off the io_context's threads.
#include "backend.hpp"
#include "core/destination_ports.hpp"
#include "platform.hpp"
#include "portres/backend.hpp"
#include "portres/reservation.hpp"
#include "portres/association.hpp"

#include <asio/post.hpp>

#include <cstdlib>
#include <limits>
#include <cstring>
#include <mutex>
#include <string>
#include <utility>

namespace portres {
namespace detail {
namespace {

struct selection {
  std::mutex mutex;
  backend* current = nullptr;
};

selection& selected() {
  static selection s;
  return s;
}

backend* resolve(backend_kind kind, std::error_code& ec) {
  ec.clear();
  std::string reason;
  switch (kind) {
  case backend_kind::fallback: return &fallback_backend();
  case backend_kind::native:
    if (auto* native = native_backend(reason)) return native;
    ec = error::backend_unavailable;
    return nullptr;
  case backend_kind::automatic:
    // Native only where the OS really supports it (e.g. not under Wine, not
    // before Windows build 17763); otherwise the portable fallback.
    if (os_capabilities().native_runtime) {
      if (auto* native = native_backend(reason)) return native;
    }
    return &fallback_backend();
  }
  ec = error::backend_unavailable;
  return nullptr;
}

backend_kind kind_from_environment() {
  const char* text = std::getenv("PORTRES_BACKEND");
  if (text == nullptr || std::strcmp(text, "auto") == 0 || *text == '\0') return backend_kind::automatic;
  if (std::strcmp(text, "native") == 0) return backend_kind::native;
  if (std::strcmp(text, "fallback") == 0) return backend_kind::fallback;
  return backend_kind::automatic;
}

bool would_block(const std::error_code& ec) { return ec == std::errc::operation_would_block; }

owned_state& owned(runtime_state& s) { return static_cast<owned_state&>(s); }

} // namespace

backend& active() {
  auto& s = selected();
  std::lock_guard lock(s.mutex);
  if (s.current == nullptr) {
    std::error_code ec;
    s.current = resolve(kind_from_environment(), ec);
    // PORTRES_BACKEND=native where native cannot run: stay portable and let
    // capabilities() say why, rather than fail every call.
    if (s.current == nullptr) s.current = &fallback_backend();
  }
  return *s.current;
}

asio::thread_pool& blocking_pool() {
  static asio::thread_pool pool(2);
  return pool;
}

namespace {
// A job on the blocking pool and its hold on the contexts it completes on.
// Members are destroyed in reverse order: the job (a completion it never
// invoked, the I/O objects it captured) goes before the hold is let go, also
// when the pool drops the job without running it.
template <class Job>
struct held_job {
  blocking_work work;
  Job job;
  void operator()() { job(); }
};

template <class Job>
void post_blocking(blocking_work work, Job job) {
  asio::post(blocking_pool(), held_job<Job>{std::move(work), std::move(job)});
}
} // namespace

void throw_if(const std::error_code& ec, const char* what) {
  if (ec) throw std::system_error(ec, what);
}

backend* replace_active(backend* b) {
  auto& s = selected();
  std::lock_guard lock(s.mutex);
  return std::exchange(s.current, b);
}

// Default asynchronous forms. Acquire and release touch the registry's files:
// always on the blocking pool, so the initiating call returns at once.
void backend::async_acquire(const asio::any_io_executor& ex, protocol p, port_range r, acquire_completion done) {
  blocking_work work;
  if (!done.enter(work)) return; // the io_context is being destroyed: nowhere to complete
  post_blocking(std::move(work), [this, ex, p, r, done = std::move(done)]() mutable {
    std::error_code ec;
    auto state = acquire(ex, p, r, blocking::allowed, ec);
    done(ec, runtime_reservation(std::move(state)));
  });
}

void backend::async_release(std::shared_ptr<owned_state> s, status_completion done) {
  blocking_work work;
  if (!done.enter(work)) return;
  post_blocking(std::move(work), [this, s = std::move(s), done = std::move(done)]() mutable {
    std::error_code ec;
    release(*s, blocking::allowed, ec);
    done(ec);
  });
}

std::uint16_t backend::bind_fresh(native_socket, protocol, reservation_token, const asio::ip::address&, blocking,
                                  std::error_code& ec) {
  ec = std::make_error_code(std::errc::function_not_supported);
  return 0;
}

bool backend::shares_ports(protocol) const noexcept { return false; }

std::uint16_t backend::bind_towards(native_socket s, std::span<const asio::ip::address> sources,
                                    const asio::ip::address&, std::uint16_t, std::error_code& ec) {
  return bind(s, sources.empty() ? nullptr : &sources.front(), ec);
}

std::uint16_t backend::bind_fresh_towards(native_socket, reservation_token, std::span<const asio::ip::address>,
                                          const asio::ip::address&, std::uint16_t, blocking, asio::ip::address&,
                                          std::error_code& ec) {
  ec = std::make_error_code(std::errc::function_not_supported);
  return 0;
}

void backend::share_port(reservation_token, std::uint16_t, const destination&) {}

void backend::port_returned(reservation_token, std::uint16_t, const destination*,
                            std::chrono::steady_clock::time_point) {}

void backend::port_released(reservation_token, std::uint16_t, const destination*, native_socket) {}

destination_headroom backend::headroom(reservation_token, std::span<const asio::ip::address>,
                                       const asio::ip::address&, std::uint16_t) {
  return {};
}

std::size_t backend::free_ports(reservation_token) { return std::numeric_limits<std::size_t>::max(); }

std::error_code backend::status(owned_state&) { return {}; }

void backend::async_associate(const asio::any_io_executor&, native_socket s, reservation_token t,
                              status_completion done) {
  std::error_code ec;
  associate(s, t, blocking::forbidden, ec);
  if (!would_block(ec)) {
    done(ec);
    return;
  }
  blocking_work work;
  if (!done.enter(work)) return;
  post_blocking(std::move(work), [this, s, t, done = std::move(done)]() mutable {
    std::error_code ec2;
    associate(s, t, blocking::allowed, ec2);
    done(ec2);
  });
}

state_ptr acquire(const asio::any_io_executor& ex, protocol p, port_range r, std::error_code& ec) {
  ec = r.validate();
  if (ec) return nullptr;
  return active().acquire(ex, p, r, blocking::allowed, ec);
}

void async_acquire(const asio::any_io_executor& ex, protocol p, port_range r, acquire_completion done) {
  if (const auto ec = r.validate()) {
    done(ec, runtime_reservation()); // delivered through the executor, never inline
    return;
  }
  active().async_acquire(ex, p, r, std::move(done));
}

void release(runtime_state& s, std::error_code& ec) {
  owned(s).owner().release(owned(s), blocking::allowed, ec);
  s.ended(error::reservation_released); // pools waiting on it stop waiting now
}

void async_release(state_ptr s, status_completion done) {
  if (!s) {
    done(error::already_released);
    return;
  }
  auto state = std::static_pointer_cast<owned_state>(std::move(s));
  state->ended(error::reservation_released); // gone for its users as soon as the release starts
  auto& owner = state->owner();
  owner.async_release(std::move(state), std::move(done));
}

void set_port_policy(runtime_state& s, port_policy policy, std::error_code& ec) {
  owned(s).owner().set_port_policy(owned(s), policy, ec);
}

void associate(native_socket s, reservation_token t, std::error_code& ec) {
  if (!t) {
    ec = error::invalid_token;
    return;
  }
  active().associate(s, t, blocking::allowed, ec);
}

void associate_as(native_socket s, protocol p, reservation_token t, std::error_code& ec) {
  if (!t) {
    ec = error::invalid_token;
    return;
  }
  active().associate_as(s, p, t, blocking::allowed, ec);
}

void async_associate(const asio::any_io_executor& ex, native_socket s, reservation_token t,
                     status_completion done) {
  if (!t) {
    done(error::invalid_token);
    return;
  }
  if (s == native_socket(asio::detail::invalid_socket)) {
    done(error::socket_not_open);
    return;
  }
  active().async_associate(ex, s, t, std::move(done));
}

std::uint16_t bind(native_socket s, const asio::ip::address* local, std::error_code& ec) {
  return active().bind(s, local, ec);
}

std::uint16_t bind_towards(native_socket s, std::span<const asio::ip::address> sources, const asio::ip::address& peer,
                           std::uint16_t peer_port, std::error_code& ec) {
  const auto port = active().bind_towards(s, sources, peer, peer_port, ec);
  ec = towards_peer(ec, peer, peer_port); // exclusive ports run out as a block does: still name the peer
  return port;
}

destination_headroom headroom(const runtime_state& r, std::span<const asio::ip::address> sources,
                              const asio::ip::address& peer, std::uint16_t peer_port) {
  return owner_of(&r).headroom(r.granted().token, sources, peer, peer_port);
}

backend& owner_of(const runtime_state* owner) {
  return owner ? static_cast<const owned_state*>(owner)->owner() : active();
}

native_socket open_uninheritable(bool ipv6, protocol p, std::error_code& ec) {
  return platform::open_socket(ipv6, p, ec);
}

void close_native(native_socket s) noexcept { platform::close_socket(s); }

bool run_blocking(const asio::any_io_executor& ex, std::function<void()> job) {
  blocking_work work;
  if (!work.enter(context_of(ex), nullptr)) return false;
  post_blocking(std::move(work), std::move(job));
  return true;
}

bool socket_reuse_available() {
  std::string reason;
  return platform::socket_reuse(reason);
}

void async_disconnect_for_reuse(const asio::any_io_executor& ex, native_socket s, status_completion done) {
  if (s == native_socket(asio::detail::invalid_socket)) {
    done(error::socket_not_open);
    return;
  }
  platform::disconnect_for_reuse(ex, s, std::move(done));
}

} // namespace detail

const char* to_string(backend_kind k) noexcept {
  switch (k) {
  case backend_kind::automatic: return "auto";
  case backend_kind::native: return "native";
  case backend_kind::fallback: return "fallback";
  }
  return "unknown";
}

void select_backend(backend_kind kind, std::error_code& ec) noexcept {
  auto* chosen = detail::resolve(kind, ec);
  if (ec) return;
  auto& s = detail::selected();
  std::lock_guard lock(s.mutex);
  s.current = chosen;
}

void select_backend(backend_kind kind) {
  std::error_code ec;
  select_backend(kind, ec);
  detail::throw_if(ec, "portres::select_backend");
}

backend_kind active_backend() { return detail::active().kind(); }

capability_report capabilities() {
  auto report = detail::os_capabilities();
  report.socket_reuse = detail::platform::socket_reuse(report.socket_reuse_reason);
  report.port_sharing = detail::active().shares_ports(protocol::tcp);
  if (!report.port_sharing) {
    report.port_sharing_reason = detail::platform::shares_ports_safely()
                                     ? "the backend in force lets the OS pick the port at bind time (Windows port "
                                       "reservations), so each port carries one socket"
                                     : "the OS cannot share a port without letting another socket bind over it "
                                       "(Windows' SO_REUSEADDR), so each port carries one socket";
  }
  return report;
}

// runtime_reservation members that are not templates.
runtime_reservation& runtime_reservation::operator=(runtime_reservation&& other) noexcept {
  if (this != &other) {
    // Dropping our share releases the old reservation once nobody else (a pool) holds it.
    state_ = std::move(other.state_);
    executor_ = std::move(other.executor_);
  }
  return *this;
}

runtime_reservation::~runtime_reservation() {
  // The derived state's destructor releases what is still held.
}

portres::protocol runtime_reservation::protocol() const noexcept { return state_->proto(); }
port_range runtime_reservation::range() const noexcept { return state_->granted().range; }
reservation_token runtime_reservation::token() const noexcept { return state_->granted().token; }
portres::reservation runtime_reservation::get() const noexcept { return state_->granted(); }

void runtime_reservation::set_port_policy(port_policy policy, std::error_code& ec) noexcept {
  if (!state_) {
    ec = error::already_released;
    return;
  }
  detail::set_port_policy(*state_, policy, ec);
}

void runtime_reservation::set_port_policy(port_policy policy) {
  std::error_code ec;
  set_port_policy(policy, ec);
  detail::throw_if(ec, "portres::runtime_reservation::set_port_policy");
}

destination_headroom headroom(const runtime_reservation& reservation, const asio::ip::address& peer,
                              std::uint16_t peer_port, std::span<const asio::ip::address> sources) {
  if (!reservation) return {};
  return detail::headroom(*reservation.state(), sources, peer, peer_port);
}

void runtime_reservation::release(std::error_code& ec) noexcept {
  if (!state_) {
    ec = error::already_released;
    return;
  }
  auto state = std::move(state_);
  detail::release(*state, ec);
}

void runtime_reservation::release() {
  std::error_code ec;
  release(ec);
  detail::throw_if(ec, "portres::runtime_reservation::release");
}

} // namespace portres
