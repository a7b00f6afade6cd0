#include "portresd/daemon.hpp"

#include "core/block_placement.hpp"
#include "linux/broker_protocol.hpp"
#include "linux/persistent_store.hpp"
#include "linux/reserved_ports.hpp"
#include "linux/state_files.hpp"
#include "platform.hpp"

#include <gsl/gsl>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <optional>
#include <unordered_map>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <grp.h>
#include <pwd.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace portres::portresd {
namespace {

using namespace portres::detail;
namespace wire = broker_wire;
using linux_files::unique_fd;
using clock = std::chrono::steady_clock;

// A connection that holds nothing and says nothing for this long is closed
// (half-open or idle peers cannot pin descriptors).
constexpr auto idle_limit = std::chrono::seconds(10);
constexpr std::uint64_t listen_tag = ~std::uint64_t{0};
constexpr std::uint64_t signal_tag = ~std::uint64_t{0} - 1;

struct grant {
  protocol proto;
  port_range range;
  std::uint64_t token;
};

struct connection {
  unique_fd fd;
  ucred peer{};
  std::optional<grant> held;
  clock::time_point last_activity;
};

class daemon {
public:
  explicit daemon(const options& opts)
      : opts_(opts), placement_(default_placement()), registry_(opts.registry_dir) {}

  int run() {
    if (!listen()) return 1;
    std::error_code ec;
    if ((ec = owned_file_.open(opts_.state_dir))) {
      log("state folder %s: %s", opts_.state_dir.c_str(),
          ec == std::errc::device_or_resource_busy ? "another portresd serves this network namespace"
                                                   : ec.message().c_str());
      return 1;
    }
    set_stored(linux_store::load(ec));
    if (ec) log("persistent store unreadable (%s): serving runtime reservations only", ec.message().c_str());
    reclaim();
    std::printf("portresd: serving @%s (pid %d)\n", opts_.socket_name.c_str(), static_cast<int>(::getpid()));
    std::fflush(stdout);
    epoll_event events[64];
    while (!stopping_) {
      const int n = ::epoll_wait(epoll_.get(), events, 64, 1000);
      if (n < 0 && errno != EINTR) {
        log("epoll_wait: %s", std::strerror(errno));
        return 1;
      }
      for (int i = 0; i < n; ++i) {
        const auto tag = events[i].data.u64;
        if (tag == listen_tag) {
          accept_all();
        } else if (tag == signal_tag) {
          stopping_ = true;
        } else {
          serve(static_cast<int>(tag), events[i].events);
        }
      }
      close_idle();
    }
    conns_.clear();
    live_.clear();
    live_ports_[0] = live_ports_[1] = port_bitmap{};
    sync_kernel(); // leave only the persistent blocks and foreign entries
    return 0;
  }

private:
  template <class... A>
  void log(const char* format, A... args) {
    std::fprintf(stderr, "portresd: ");
    std::fprintf(stderr, format, args...);
    std::fputc('\n', stderr);
  }

  // A predecessor killed without cleaning up left its kernel entries (its
  // clients' connections died with it, so their grants are over): what it
  // recorded as its own and the kernel still lists is ours to remove now.
  void reclaim() {
    std::error_code ec;
    const auto current = kernel_list_.read(ec);
    std::string problem;
    owned_ = owned_file_.load(problem);
    if (!problem.empty()) {
      // Safe direction: whatever a predecessor added stays, as if foreign.
      log("record of the previous daemon's kernel entries unusable (%s): none reclaimed", problem.c_str());
    }
    if (current) {
      port_bitmap stale = owned_;
      stale.remove(*current);
      owned_.remove(stale); // no longer in the kernel list: not ours to remove
    }
    if (owned_.next_set(0, port_range::max_port)) {
      log("reclaiming the kernel entries %s of a previous portresd", linux_files::format_port_list(owned_).c_str());
    }
    sync_kernel();
  }

  bool listen() {
    // Room for many live reservations: one descriptor each.
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) {
      limit.rlim_cur = limit.rlim_max;
      ::setrlimit(RLIMIT_NOFILE, &limit);
      max_connections_ = limit.rlim_cur > 64 ? limit.rlim_cur - 64 : 16;
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (opts_.socket_name.empty() || opts_.socket_name.size() + 1 > sizeof addr.sun_path) {
      log("socket name '%s' is empty or too long", opts_.socket_name.c_str());
      return false;
    }
    std::memcpy(addr.sun_path + 1, opts_.socket_name.data(), opts_.socket_name.size());
    const auto len = gsl::narrow<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + opts_.socket_name.size());
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
      if (!listener_ || ::bind(listener_.get(), reinterpret_cast<const sockaddr*>(&addr), len) != 0 ||
          ::listen(listener_.get(), 512) != 0) {
        log("cannot listen on @%s: %s (another portresd in this network namespace, or a squatter?)",
            opts_.socket_name.c_str(), std::strerror(errno));
        return false;
      }
    }
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    ::sigprocmask(SIG_BLOCK, &stop, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    signals_ = unique_fd(::signalfd(-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK));
    epoll_ = unique_fd(::epoll_create1(EPOLL_CLOEXEC));
    return watch(listener_.get(), listen_tag) && watch(signals_.get(), signal_tag);
  }

  bool watch(int fd, std::uint64_t tag) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    return ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) == 0;
  }

  void accept_all() {
    while (true) {
      unique_fd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
      if (!fd) return; // EAGAIN, or out of descriptors: the backlog waits
      connection c;
      socklen_t len = sizeof c.peer;
      if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &c.peer, &len) != 0) continue;
      auto& count = connections_by_uid_[c.peer.uid];
      if (conns_.size() >= max_connections_ || count >= opts_.rules.connections_for(c.peer.uid)) {
        wire::reply r;
        r.result = std::make_error_code(std::errc::too_many_files_open);
        send_reply(fd.get(), r);
        continue; // refused: closed at once
      }
      if (!watch(fd.get(), static_cast<std::uint64_t>(fd.get()))) continue;
      ++count;
      c.last_activity = clock::now();
      const int key = fd.get();
      c.fd = std::move(fd);
      conns_.emplace(key, std::move(c));
      // A client sends its request right after connecting: answer it now
      // rather than after another trip through epoll_wait.
      serve(key, EPOLLIN);
    }
  }

  void drop(int key) {
    const auto it = conns_.find(key);
    if (it == conns_.end()) return;
    const bool had_grant = it->second.held.has_value();
    std::optional<grant> freed = it->second.held;
    if (had_grant) forget(it->second);
    --connections_by_uid_[it->second.peer.uid];
    conns_.erase(it); // closing the descriptor also takes it out of the epoll set
    if (freed && meets_ephemeral(freed->range)) sync_kernel();
  }

  void close_idle() {
    const auto now = clock::now();
    if (now - last_sweep_ < std::chrono::seconds(1)) return;
    last_sweep_ = now;
    std::vector<int> idle;
    for (const auto& [key, c] : conns_) {
      if (!c.held && now - c.last_activity > idle_limit) idle.push_back(key);
    }
    for (const int key : idle) drop(key);
  }

  static bool send_reply(int fd, const wire::reply& r) {
    const auto bytes = wire::encode(r);
    // Never wait on a client: one that does not read loses its connection.
    return ::send(fd, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }

  void serve(int key, std::uint32_t events) {
    const auto it = conns_.find(key);
    if (it == conns_.end()) return;
    auto& c = it->second;
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
    c.last_activity = clock::now();
    const auto request = static_cast<std::size_t>(n) == wire::request_size
                             ? wire::parse_request({buf, wire::request_size})
                             : std::nullopt;
    if (request && request->kind == wire::op::list) {
      send_listing(c); // the listing is the reply
      return;
    }
    wire::reply reply;
    bool keep = true;
    if (!request) {
      reply.result = error::malformed_state; // says so, then hangs up
      keep = false;
    } else {
      reply = handle(c, *request, keep);
    }
    if (!send_reply(key, reply) || !keep) drop(key);
  }

  wire::reply handle(connection& c, const wire::request& q, bool& keep) {
    wire::reply r;
    r.kind = q.kind;
    switch (q.kind) {
    case wire::op::hello:
      r.flags = may_persist(c.peer) ? wire::flag_persistent : 0;
      break;
    case wire::op::acquire:
      r.result = acquire(c, q, r);
      if (r.result) keep = false;
      break;
    case wire::op::release:
      if (!c.held) {
        r.result = error::already_released;
      } else {
        const auto range = c.held->range;
        forget(c);
        if (meets_ephemeral(range)) sync_kernel();
      }
      keep = false;
      break;
    case wire::op::classify:
      for (const auto& [key, other] : conns_) {
        if (other.held && other.held->token == q.token) r.flags = 1;
      }
      break;
    case wire::op::list:
      break; // answered by send_listing
    case wire::op::persistent_block:
      refresh_store(true);
      for (const auto& e : stored_) {
        if (e.proto == q.proto && linux_store::token_of(e).value() == q.token) {
          r.first = e.range.first();
          r.count = e.range.count();
        }
      }
      break;
    case wire::op::persistent_create:
    case wire::op::persistent_remove:
    case wire::op::persistent_apply:
      r.result = persistent(c, q, r);
      break;
    }
    return r;
  }

  void send_listing(connection& c) {
    std::vector<wire::listed> all;
    for (const auto& [key, other] : conns_) {
      if (!other.held) continue;
      wire::listed e;
      e.proto = other.held->proto;
      e.first = other.held->range.first();
      e.count = other.held->range.count();
      e.uid = other.peer.uid;
      e.pid = gsl::narrow_cast<std::uint32_t>(other.peer.pid);
      // Tokens are capabilities: a user sees only its own (root sees all).
      if (c.peer.uid == 0 || c.peer.uid == other.peer.uid) e.token = other.held->token;
      all.push_back(e);
    }
    std::size_t pos = 0;
    do {
      wire::reply r;
      r.kind = wire::op::list;
      const auto n = std::min(all.size() - pos, wire::max_entries_per_reply);
      r.entries.assign(all.begin() + gsl::narrow<std::ptrdiff_t>(pos), all.begin() + gsl::narrow<std::ptrdiff_t>(pos + n));
      pos += n;
      r.flags = pos < all.size() ? wire::flag_more : 0;
      if (!send_reply(c.fd.get(), r)) {
        drop(c.fd.get());
        return;
      }
    } while (pos < all.size());
  }

  std::error_code acquire(connection& c, const wire::request& q, wire::reply& r) {
    if (c.held) return error::already_associated; // one reservation per connection
    const port_range request(q.first, q.count);
    if (auto ec = request.validate(true)) return ec;
    if (q.token == 0) return error::invalid_token;
    if (live_.count(q.token) != 0) return std::make_error_code(std::errc::file_exists); // the client draws again
    const auto& held_by_uid = ports_by_uid_[c.peer.uid];
    if (std::uint64_t{held_by_uid} + request.count() > opts_.rules.ports_for(c.peer.uid)) {
      return std::error_code(EDQUOT, std::system_category()); // over the policy's cap for this uid
    }
    refresh_store();
    // A specific block, or a wildcard that lands in the ephemeral range (where
    // the kernel acts on the list), is placed against the list as it is now;
    // a wildcard outside it against a copy at most 100 ms old.
    std::error_code ec;
    bool fresh = !request.is_wildcard();
    const port_bitmap* current = kernel_view(fresh);
    auto granted = place(q.proto, request, current, ec);
    if (!ec && !fresh && meets_ephemeral(granted)) {
      fresh = true;
      current = kernel_view(true);
      granted = place(q.proto, request, current, ec);
    }
    if (ec) return ec;
    if ((ec = check_share(granted, current))) return ec;
    c.held = grant{q.proto, granted, q.token};
    live_.emplace(q.token, *c.held);
    live_ports_[index(q.proto)].set_range(granted.first(), granted.last());
    ports_by_uid_[c.peer.uid] += granted.count();
    if (meets_ephemeral(granted)) sync_kernel(current);
    r.first = granted.first();
    r.count = granted.count();
    r.token = q.token;
    return {};
  }

  // Reserved ports come from our own bitmaps (kept up to date at every
  // change): the cost of a grant does not grow with the number of live ones.
  // Entries others put in the kernel list and the grants of root's per-user
  // registry (processes that started before us keep it) are reserved too.
  port_range place(protocol p, port_range request, const port_bitmap* kernel, std::error_code& ec) {
    auto& reserved = occupied(p);
    if (kernel) {
      port_bitmap foreign = *kernel;
      foreign.remove(owned_);
      reserved |= foreign;
    }
    reserved |= registry_.occupied(p);
    if (!request.is_wildcard() && reserved.next_set(request.first(), request.last())) {
      ec = error::overlaps_reservation;
      return {};
    }
    auto held = held_ports_for(p, request, ec);
    if (ec) return {};
    held |= reserved;
    return place_block(request, placement_, ephemeral(), {}, held, ec);
  }

  // The kernel list: read now, or (not `fresh`) a copy at most 100 ms old;
  // null when it cannot be read (no such sysctl here).
  const port_bitmap* kernel_view(bool fresh) {
    const auto now = clock::now();
    if (fresh || !kernel_copy_ || now - kernel_read_ > std::chrono::milliseconds(100)) {
      std::error_code ec;
      kernel_copy_ = kernel_list_.read(ec);
      kernel_read_ = now;
    }
    return kernel_copy_ ? &*kernel_copy_ : nullptr;
  }

  static std::size_t index(protocol p) { return p == protocol::tcp ? 0 : 1; }

  // Live blocks (disjoint by construction) and persistent blocks of `p`.
  port_bitmap& occupied(protocol p) {
    auto& out = occupied_scratch_;
    out = live_ports_[index(p)];
    out |= stored_ports_[index(p)];
    return out;
  }

  void set_stored(std::vector<linux_store::entry> stored) {
    stored_ = std::move(stored);
    stored_ports_[0] = stored_ports_[1] = port_bitmap{};
    for (const auto& e : stored_) stored_ports_[index(e.proto)].set_range(e.range.first(), e.range.last());
  }

  void forget(connection& c) {
    const auto r = c.held->range;
    auto& ports = live_ports_[index(c.held->proto)];
    port_bitmap block;
    block.set_range(r.first(), r.last());
    ports.remove(block);
    live_.erase(c.held->token);
    ports_by_uid_[c.peer.uid] -= c.held->range.count();
    c.held.reset();
  }

  bool may_persist(const ucred& peer) const {
    if (peer.uid == 0) return true;
    const auto group = opts_.rules.persistent_group;
    if (!group) return false;
    if (peer.gid == *group) return true;
    // Supplementary groups of the user, from the user database.
    passwd pw{};
    passwd* found = nullptr;
    char buf[4096];
    if (::getpwuid_r(peer.uid, &pw, buf, sizeof buf, &found) != 0 || found == nullptr) return false;
    gid_t groups[256];
    int n = 256;
    if (::getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0) return false;
    for (int i = 0; i < n; ++i) {
      if (groups[i] == *group) return true;
    }
    return false;
  }

  std::error_code persistent(connection& c, const wire::request& q, wire::reply& r) {
    if (!may_persist(c.peer)) return error::privilege_required;
    std::error_code ec;
    if (q.kind == wire::op::persistent_apply) {
      refresh_store(true);
      return sync_kernel() ? std::error_code() : std::error_code(error::privilege_required);
    }
    const port_range range(q.first, q.count);
    if ((ec = range.validate(false))) return ec;
    const linux_store::entry e{q.proto, range};
    std::vector<linux_store::entry> stored;
    ec = linux_store::update([&](std::vector<linux_store::entry>& entries) {
      if (q.kind == wire::op::persistent_remove) {
        if (std::erase(entries, e) == 0) return std::error_code(error::unknown_token);
      } else {
        std::vector<port_range> occupied;
        for (const auto& s : entries) {
          if (s.proto == q.proto) occupied.push_back(s.range);
        }
        for (const auto& [token, g] : live_) {
          if (g.proto == q.proto) occupied.push_back(g.range);
        }
        std::error_code held_ec;
        const auto held = platform::held_ports(q.proto, range, held_ec);
        if (held_ec) return held_ec;
        if (auto conflict = check_specific_block(range, occupied, held)) return conflict;
        // `portres add --force` (flag_force): the caller already proved its rights.
        if ((q.flags & wire::flag_force) == 0) {
          if (auto starved = check_share(range)) return starved;
        }
        entries.push_back(e);
        r.token = linux_store::token_of(e).value();
      }
      stored = entries;
      return std::error_code();
    });
    if (ec) return ec;
    set_stored(std::move(stored));
    store_stamp_ = store_mtime();
    sync_kernel();
    return {};
  }

  static std::optional<std::int64_t> store_mtime() {
    struct stat st{};
    if (::stat((linux_store::directory() + "/persistent").c_str(), &st) != 0) return std::nullopt;
    return std::int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
  }

  // The store is ours in broker mode; a stat (at most every 100 ms) notices
  // an edit by hand.
  void refresh_store(bool now_please = false) {
    const auto now = clock::now();
    if (!now_please && now - store_checked_ < std::chrono::milliseconds(100)) return;
    store_checked_ = now;
    const auto stamp = store_mtime();
    if (stamp == store_stamp_) return;
    std::error_code ec;
    auto stored = linux_store::load(ec);
    if (!ec) set_stored(std::move(stored));
    store_stamp_ = stamp;
  }

  port_range ephemeral() {
    const auto now = clock::now();
    if (now - ephemeral_read_ > std::chrono::milliseconds(250)) {
      ephemeral_ = platform::ephemeral_range();
      ephemeral_read_ = now;
    }
    return ephemeral_;
  }

  bool meets_ephemeral(port_range r) {
    const auto eph = ephemeral();
    return r.first() <= eph.last() && r.last() >= eph.first();
  }

  // Live and persistent blocks where they meet the ephemeral range: what the
  // kernel list must hold for us.
  port_bitmap wanted_ports() {
    const auto eph = ephemeral();
    port_bitmap wanted = live_ports_[0];
    wanted |= live_ports_[1];
    wanted |= stored_ports_[0];
    wanted |= stored_ports_[1];
    port_bitmap outside; // the kernel list only matters inside the ephemeral range
    if (eph.first() > 0) outside.set_range(0, eph.first() - 1u);
    if (eph.last() < port_range::max_port) outside.set_range(eph.last() + 1u, port_range::max_port);
    wanted.remove(outside);
    return wanted;
  }

  // A block that would leave less than the required share of the ephemeral
  // range to automatic allocation is refused (PORTRES_EPHEMERAL_FREE_SHARE
  // in the daemon's environment).
  std::error_code check_share(port_range block, const port_bitmap* current = nullptr) {
    if (!meets_ephemeral(block)) return {};
    std::error_code ec;
    auto reserved = current ? std::optional(*current) : kernel_list_.read(ec);
    if (!reserved) return {}; // no kernel list here: nothing to starve
    *reserved |= wanted_ports();
    reserved->set_range(block.first(), block.last());
    std::uint32_t remaining = 0;
    ec = reserved_ports::check_free_share(*reserved, ephemeral(), reserved_ports::required_free_share(), remaining);
    if (ec) log("refused %s: would leave %u ephemeral ports", to_string(block).c_str(), remaining);
    return ec;
  }

  // ip_local_reserved_ports := (entries we did not add) | (what we want), from our own table.
  // What we own is recorded before the kernel changes (as a superset) and
  // after (exactly), so a daemon killed at any point leaves a record of
  // every entry it may have added. `current`: the list as just read.
  bool sync_kernel(const port_bitmap* current = nullptr) {
    std::error_code ec;
    std::optional<port_bitmap> read;
    if (!current) {
      read = kernel_list_.read(ec);
      if (!read) {
        log("cannot read the kernel's reserved ports: %s", ec.message().c_str());
        return false;
      }
      current = &*read;
    }
    const auto wanted = wanted_ports();
    port_bitmap may_own = owned_;
    may_own |= wanted;
    if ((ec = owned_file_.save(may_own))) {
      // Unrecorded entries would leak if we were killed: leave the list alone.
      log("cannot record the kernel entries we own (%s): kernel list not changed", ec.message().c_str());
      return false;
    }
    port_bitmap next = *current; // what the list holds after the write
    next.remove(owned_);
    next |= wanted;
    const auto now_owned = reserved_ports::write(owned_, wanted, ec, current);
    if (!now_owned) {
      log("cannot update the kernel's reserved ports: %s", ec.message().c_str());
      kernel_copy_.reset();
      return false;
    }
    kernel_copy_ = next;
    kernel_read_ = clock::now();
    owned_ = *now_owned;
    owned_file_.save(owned_);
    return true;
  }

  const options& opts_;
  port_range placement_;
  owned_ports_file owned_file_;
  reserved_ports::reader kernel_list_;
  std::optional<port_bitmap> kernel_copy_;
  clock::time_point kernel_read_{}, store_checked_{};
  registry_watch registry_;
  unique_fd listener_, signals_, epoll_;
  std::size_t max_connections_ = 1024;
  bool stopping_ = false;
  std::unordered_map<int, connection> conns_;
  std::unordered_map<std::uint64_t, grant> live_;
  std::unordered_map<std::uint32_t, std::uint32_t> ports_by_uid_;
  std::unordered_map<std::uint32_t, std::uint32_t> connections_by_uid_;
  std::vector<linux_store::entry> stored_;
  std::optional<std::int64_t> store_stamp_;
  port_bitmap owned_;
  port_bitmap live_ports_[2], stored_ports_[2], occupied_scratch_;
  port_range ephemeral_;
  clock::time_point ephemeral_read_{}, last_sweep_{};
};

} // namespace

int run(const options& opts) {
  daemon d(opts);
  return d.run();
}

} // namespace portres::portresd
