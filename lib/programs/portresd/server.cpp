#include "portresd/server.hpp"

#include "core/block_placement.hpp"
#include "portres/linux_error.hpp"
#include "portresd/credentials.hpp"

#include <gsl/gsl>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <tuple>

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

namespace portres::portresd {
namespace {

using detail::linux_files::unique_fd;
namespace wire = detail::broker_wire;

constexpr std::uint64_t listen_tag = ~std::uint64_t{0};
constexpr std::uint64_t signal_tag = ~std::uint64_t{0} - 1;
constexpr std::uint64_t root_listen_tag = ~std::uint64_t{0} - 2;
// Per turn: how many connections are accepted, and how many events served.
// Bounded so a flood of one kind never starves the other.
constexpr int accepts_per_turn = 512; // the whole backlog: a root connection in it is found at once
constexpr int events_per_turn = 256;
// Connections answered as they are accepted (a client sends its request
// right after connecting); the rest wait for the next turns' events. Root's
// are always answered at once, ahead of anyone who floods the backlog.
constexpr int answered_on_accept = 8;

} // namespace

server::server(const options& opts, int folder)
    : opts_(opts), folder_(folder), placement_(detail::default_placement()), kernel_(folder),
      registry_(opts.registry_dir) {}

int server::run() {
  ephemeral();
  if (const auto said = kernel_.reclaim(); !said.empty()) log("%s", said.c_str());
  std::string problem;
  if (!store_.load(problem)) log("persistent store unreadable (%s): serving runtime reservations only", problem.c_str());
  if (!listen()) return 1;
  // Only once we serve: from now on registry-mode processes grant nothing.
  if (const auto ec = presence_.publish(folder_)) {
    log("cannot publish our presence in %s: %s", detail::broker_presence::folder().c_str(), ec.message().c_str());
    return 1;
  }
  std::string why;
  if (const auto ec = kernel_.commit(wanted(), why)) log("kernel list: %s", why.c_str());
  std::printf("portresd: serving @%s (pid %d)\n", opts_.socket_name.c_str(), static_cast<int>(::getpid()));
  std::fflush(stdout);
  epoll_event events[events_per_turn];
  while (!stopping_) {
    const int n = ::epoll_wait(epoll_.get(), events, events_per_turn, 1000);
    if (n < 0 && errno != EINTR) {
      log("epoll_wait: %s", std::strerror(errno));
      return 1;
    }
    // Root's listener first: its connections are served ahead of a flood.
    // One per turn (the listener stays readable while more wait): no
    // accept that finds none on root's hot path.
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == root_listen_tag) accept_some(root_listener_.get(), 1);
    }
    for (int i = 0; i < n; ++i) {
      const auto tag = events[i].data.u64;
      if (tag == root_listen_tag) continue;
      if (tag == listen_tag) {
        accept_some(listener_.get(), accepts_per_turn);
      } else if (tag == signal_tag) {
        stopping_ = true;
      } else {
        serve(static_cast<int>(tag), events[i].events);
      }
    }
    end_turn();
  }
  // Leave only the persistent blocks and foreign entries.
  for (const auto& key : conns_.keys()) drop(key);
  pending_.clear();
  if (root_listener_) ::unlink(root_socket_.c_str());
  if (const auto ec = kernel_.commit(wanted(), why, true)) log("kernel list at exit: %s", why.c_str());
  return 0;
}

bool server::listen() {
  // Room for many live reservations: one descriptor each.
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
    conns_.set_capacity(limit.rlim_cur > 64 ? limit.rlim_cur - 64 : 16);
  }
  // Out of descriptors, accept() fails and the listener stays readable: this
  // spare is closed to accept and refuse one, then taken again.
  spare_ = unique_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  const auto address = wire::abstract_address(opts_.socket_name);
  if (!address) {
    log("socket name '%s' is empty or too long", opts_.socket_name.c_str());
    return false;
  }
  std::string why;
  const int inherited = inherited_listener(why);
  if (inherited == -2) {
    log("%s", why.c_str());
    return false;
  }
  if (inherited >= 0) { // socket activation: systemd took the name at boot, as root
    listener_ = unique_fd(inherited);
  } else {
    listener_ = unique_fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!listener_ || ::bind(listener_.get(), reinterpret_cast<const sockaddr*>(&address->addr), address->length) != 0 ||
        ::listen(listener_.get(), 512) != 0) {
      log("cannot listen on @%s: %s (a squatter on the name?)", opts_.socket_name.c_str(), std::strerror(errno));
      return false;
    }
  }
  listen_for_root();
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  ::sigprocmask(SIG_BLOCK, &stop, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  signals_ = unique_fd(::signalfd(-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK));
  epoll_ = unique_fd(::epoll_create1(EPOLL_CLOEXEC));
  return watch(listener_.get(), listen_tag) && watch(signals_.get(), signal_tag) &&
         (!root_listener_ || watch(root_listener_.get(), root_listen_tag));
}

// A socket file in the namespace folder that only root may connect to (mode
// 0600): root's requests never queue behind other users' connections.
// Without it root uses the abstract name like everyone.
void server::listen_for_root() {
  const auto path = detail::broker_presence::root_socket(listener_.get());
  const auto address = path ? wire::path_address(*path) : std::nullopt;
  if (!address) return;
  root_socket_ = *path;
  ::unlink(path->c_str()); // a predecessor's
  unique_fd s(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  const auto mask = ::umask(077);
  const bool bound = s && ::bind(s.get(), reinterpret_cast<const sockaddr*>(&address->addr), address->length) == 0;
  ::umask(mask);
  if (!bound || ::listen(s.get(), 512) != 0) {
    log("no socket for root at %s (%s): root uses @%s too", path->c_str(), std::strerror(errno),
        opts_.socket_name.c_str());
    return;
  }
  root_listener_ = std::move(s);
}

bool server::watch(int fd, std::uint64_t tag) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = tag;
  return ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) == 0;
}

void server::accept_some(int listener, int most) {
  for (int i = 0; i < most; ++i) {
    unique_fd fd(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!fd) {
      if ((errno == EMFILE || errno == ENFILE) && spare_) {
        spare_ = unique_fd(); // room for one: refuse it rather than spin on a readable listener
        unique_fd one(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
        const auto uid = one ? peer_of(one.get()).value_or(ucred{}).uid : 0;
        if (one) refuse_connection(std::move(one), uid);
        spare_ = unique_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
      }
      return; // EAGAIN: the backlog is empty
    }
    const auto peer = peer_of(fd.get());
    if (!peer) continue;
    if (conns_.admit(peer->uid, opts_.rules)) {
      refuse_connection(std::move(fd), peer->uid);
      continue;
    }
    if (!watch(fd.get(), static_cast<std::uint64_t>(fd.get()))) continue;
    const int key = fd.get();
    conns_.add(std::move(fd), *peer);
    // A client sends its request right after connecting: answer it now
    // rather than after another trip through epoll_wait.
    if (peer->uid == 0 || i < answered_on_accept) serve(key, EPOLLIN);
  }
}

void server::refuse_connection(unique_fd fd, std::uint32_t uid) {
  wire::reply r;
  r.result = linux_error::connection_quota;
  send_reply(fd.get(), r); // then closed: the client reads why
  refusals_.note(uid, "a connection", "connection limit reached");
}

bool server::send_reply(int fd, const wire::reply& r) {
  const auto bytes = wire::encode(r);
  // Never wait on a client: one that does not read loses its connection.
  return ::send(fd, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
}

void server::serve(int key, std::uint32_t events) {
  auto* c = conns_.find(key);
  if (c == nullptr) return;
  if ((events & EPOLLIN) == 0) {
    drop(key); // hang-up or error
    return;
  }
  std::uint8_t buf[wire::request_size + 1];
  const auto n = ::recv(key, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    drop(key); // closed (or failed): its grant ends now
    return;
  }
  const auto request = static_cast<std::size_t>(n) == wire::request_size
                           ? wire::parse_request({buf, wire::request_size})
                           : std::nullopt;
  outcome out;
  wire::reply reply;
  if (!request) {
    reply.result = error::malformed_state; // says so, then hangs up
    out.keep = false;
  } else {
    reply = handle(*c, *request, out);
  }
  if (out.defer) {
    pending_.push_back({key, c->serial, std::move(reply), out.keep, out.grant, out.created, out.must_write});
    return;
  }
  if (!send_reply(key, reply) || !out.keep) drop(key);
}

void server::drop(int key) {
  auto* c = conns_.find(key);
  if (c == nullptr) return;
  if (c->held) forget(*c);
  conns_.remove(key);
}

void server::forget(connection& c) {
  const auto g = table_.remove(*c.held);
  c.held.reset();
  if (meets_ephemeral(g.range)) kernel_.touch();
}

// One write of the kernel list for every grant and release of this turn;
// the replies that depend on it go out now. A grant the write did not
// enforce is taken back and answered with the failure.
void server::end_turn() {
  held_this_turn_[0].reset();
  held_this_turn_[1].reset();
  kernel_.new_turn();
  bool force = false;
  for (const auto& p : pending_) force = force || p.must_write;
  std::string why;
  std::error_code ec;
  if (kernel_.dirty() || force) ec = kernel_.commit(wanted(), why, force);
  if (ec) refusals_.problem("kernel list not written, grants of this turn refused: " + why);
  for (auto& p : pending_) {
    auto* c = conns_.find(p.key);
    if (c == nullptr || c->serial != p.serial) continue; // gone this turn: its grant went with it
    if (ec && (p.grant != 0 || p.created || p.must_write)) {
      if (p.grant != 0 && c->held == p.grant) forget(*c);
      if (p.created) { // not enforced: not created
        std::error_code undo;
        auto before = detail::linux_store::remove(*p.created, undo);
        if (!undo) store_.set(std::move(before));
        kernel_.touch();
      }
      const auto kind = p.reply.kind;
      p.reply = wire::reply();
      p.reply.kind = kind;
      p.reply.result = ec;
      p.keep = false;
    }
    if (!send_reply(p.key, p.reply) || !p.keep) drop(p.key);
  }
  pending_.clear();
  const auto now = clock::now();
  if (now - last_sweep_ >= std::chrono::seconds(1)) {
    last_sweep_ = now;
    for (const int key : conns_.expired(now, std::chrono::seconds(opts_.rules.idle_seconds))) drop(key);
  }
}

port_range server::ephemeral() {
  const auto now = clock::now();
  if (now - ephemeral_read_ > std::chrono::milliseconds(250)) {
    ephemeral_ = detail::platform::ephemeral_range();
    ephemeral_read_ = now;
  }
  return ephemeral_;
}

bool server::meets_ephemeral(port_range r) { return r.count() != 0 && r.overlaps(ephemeral()); }

std::uint32_t server::unprivileged_start() {
  const auto now = clock::now();
  if (now - unprivileged_read_ > std::chrono::milliseconds(250)) {
    unprivileged_ = unprivileged_port_start();
    unprivileged_read_ = now;
  }
  return unprivileged_;
}

const detail::port_bitmap& server::wanted() {
  const auto key = std::tuple(table_.version(), store_.version(), ephemeral());
  if (store_.damaged()) { // persistent blocks unknown: remove nothing we listed before
    wanted_key_.reset();
  } else if (wanted_key_ == key) {
    return wanted_;
  }
  auto blocks = table_.all_ports();
  blocks |= store_.all_ports();
  wanted_ = detail::reserved_ports::to_enforce(blocks, std::get<2>(key));
  if (store_.damaged()) {
    wanted_ |= kernel_.owner().owned();
  } else {
    wanted_key_ = key;
  }
  return wanted_;
}

detail::port_bitmap server::wanted_with(const std::vector<detail::linux_store::entry>& stored) {
  auto blocks = table_.all_ports();
  for (const auto& e : stored) blocks.set_range(e.range.first(), e.range.last());
  return detail::reserved_ports::to_enforce(blocks, ephemeral());
}

int run(const options& opts) {
  // The namespace folder, and the namespace's daemon lock in it: one daemon
  // per network namespace whatever its socket name or arguments.
  std::error_code ec;
  const auto folder = detail::broker_presence::open_folder(true, ec);
  if (!folder) {
    log("namespace folder %s: %s", detail::broker_presence::folder().c_str(), ec.message().c_str());
    return 1;
  }
  const auto lock = take_daemon_lock(folder.get(), ec);
  if (!lock) {
    log("namespace folder %s: %s", detail::broker_presence::folder().c_str(),
        ec == std::errc::device_or_resource_busy ? "another portresd serves this network namespace"
                                                 : ec.message().c_str());
    return 1;
  }
  server s(opts, folder.get());
  return s.run();
}

} // namespace portres::portresd
