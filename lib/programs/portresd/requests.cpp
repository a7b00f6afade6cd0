// What each request does: checks against the policy, placement, the
// ephemeral share, the table and the store. Replies that depend on the
// kernel list wait for the turn's write (server.cpp, end_turn).
#include "portresd/server.hpp"

#include "portres/error.hpp"
#include "portres/linux_error.hpp"
#include "core/block_placement.hpp"
#include "platform.hpp"
#include "portresd/credentials.hpp"

#include <gsl/gsl>

#include <algorithm>

namespace portres::portresd {

using detail::port_bitmap;
namespace wire = detail::broker_wire;

wire::reply server::handle(connection& c, const wire::request& q, outcome& out) {
  wire::reply r;
  r.kind = q.kind;
  switch (q.kind) {
  case wire::op::hello:
    r.flags = may_persist(c) ? wire::flag_persistent : 0;
    break;
  case wire::op::acquire:
    r.result = acquire(c, q, r, out);
    if (r.result) out.keep = false;
    break;
  case wire::op::release:
    if (!c.held) {
      r.result = error::already_released;
    } else {
      // Answered once the kernel list no longer holds it.
      forget(c);
      out.defer = kernel_.dirty();
    }
    out.keep = false;
    break;
  case wire::op::classify:
    r.flags = table_.holds_token(q.token) ? 1 : 0;
    break;
  case wire::op::list:
    list_page(c, q.token, r);
    break;
  case wire::op::persistent_block:
    store_.refresh(true);
    for (const auto& e : store_.entries()) {
      if (e.proto == q.proto && detail::linux_store::token_of(e).value() == q.token) {
        r.first = e.range.first();
        r.count = e.range.count();
      }
    }
    break;
  case wire::op::persistent_create:
  case wire::op::persistent_remove:
  case wire::op::persistent_apply:
    r.result = persistent(c, q, r, out);
    break;
  }
  return r;
}

// One page from `cursor`: the client asks for the next, so nothing is ever
// queued for a client that does not read, and a listing is never cut short.
void server::list_page(connection& c, std::uint64_t cursor, wire::reply& r) const {
  std::uint64_t next = 0;
  for (const auto* g : table_.page(cursor, wire::max_entries_per_reply, next)) {
    wire::listed e;
    e.proto = g->proto;
    e.first = g->range.first();
    e.count = g->range.count();
    e.uid = g->uid;
    e.pid = g->pid;
    // Tokens are capabilities: a user sees only its own (root sees all).
    if (c.peer.uid == 0 || c.peer.uid == g->uid) e.token = g->token;
    r.entries.push_back(e);
  }
  r.token = next;
  r.flags = next != 0 ? wire::flag_more : 0;
}

std::error_code server::refuse(const connection& c, std::error_code why, const std::string& what,
                               const std::string& detail) {
  refusals_.note(c.peer.uid, what, detail.empty() ? why.message() : detail);
  return why;
}

std::error_code server::acquire(connection& c, const wire::request& q, wire::reply& r, outcome& out) {
  if (c.held) return error::already_associated; // one reservation per connection
  const port_range request(q.first, q.count);
  if (auto ec = request.validate(true)) return ec;
  if (q.token == 0) return error::invalid_token;
  if (table_.holds_token(q.token)) return std::make_error_code(std::errc::file_exists); // the client draws again
  const auto uid = c.peer.uid;
  const auto what = to_string(request);
  const auto& rules = opts_.rules;
  if (table_.blocks_of(uid) + std::uint64_t{1} > rules.blocks_for(uid)) {
    return refuse(c, linux_error::block_quota, what, "max-blocks " + std::to_string(rules.blocks_for(uid)));
  }
  if (std::uint64_t{table_.ports_of(uid)} + request.count() > rules.ports_for(uid)) {
    return refuse(c, linux_error::port_quota, what, "max-ports " + std::to_string(rules.ports_for(uid)));
  }
  // Root's share of the placement range: other users' wildcards go below
  // it, and their specific blocks stay out of it.
  auto placement = placement_;
  if (uid != 0) {
    const auto kept = rules.root_share(placement_);
    if (!request.is_wildcard() && kept && kept->overlaps(request)) {
      return refuse(c, linux_error::reserved_for_root, what, "root-reserve " + to_string(*kept));
    }
    const auto shared = rules.shared_placement(placement_);
    if (request.is_wildcard() && !shared) return error::block_unavailable;
    if (shared) placement = *shared;
  }
  store_.refresh();
  // A specific block, or a wildcard that lands in the ephemeral range (where
  // the kernel acts on the list), is placed against the list as it is now;
  // a wildcard outside it against a copy at most 100 ms old.
  std::error_code ec;
  const bool fresh = !request.is_wildcard();
  const auto* foreign = kernel_.foreign(fresh); // entries of the kernel list others added
  auto granted = place_for(q.proto, request, placement, foreign, ec);
  if (!ec && !fresh && meets_ephemeral(granted)) {
    foreign = kernel_.foreign(true);
    granted = place_for(q.proto, request, placement, foreign, ec);
  }
  if (ec) return ec;
  // Ports only root (or CAP_NET_BIND_SERVICE) may bind are only theirs to reserve.
  if (granted.first() < unprivileged_start() && !peer_may_bind_privileged(c.fd.get(), c.peer)) {
    return refuse(c, error::privilege_required, what, "privileged ports");
  }
  if (meets_ephemeral(granted) && foreign) {
    std::uint32_t remaining = 0;
    if (auto starved = detail::reserved_ports_owner::check_share(*foreign, wanted(), granted, ephemeral(), remaining)) {
      return refuse(c, starved, to_string(granted),
                    "would leave " + std::to_string(remaining) + " ephemeral ports free");
    }
  }
  table_.add({q.proto, granted, q.token, uid, gsl::narrow_cast<std::uint32_t>(c.peer.pid)});
  c.held = q.token;
  r.first = granted.first();
  r.count = granted.count();
  r.token = q.token;
  if (meets_ephemeral(granted)) {
    kernel_.touch();
    out.defer = true; // granted once the kernel list holds it
    out.grant = q.token;
  }
  return {};
}

// Reserved ports come from our own bitmaps (kept up to date at every
// change): the cost of a grant does not grow with the number of live ones.
// Entries others put in the kernel list and the grants of root's per-user
// registry (processes that started before us keep it) are reserved too.
port_range server::place_for(protocol p, port_range request, port_range placement, const port_bitmap* foreign,
                             std::error_code& ec) {
  port_bitmap reserved = table_.ports(p);
  reserved |= store_.ports(p);
  if (foreign) reserved |= *foreign;
  reserved |= registry_.occupied(p);
  const auto* held = held_ports(p, request, ec);
  if (ec) return {};
  return place(request, reserved, *held, placement, ephemeral(), ec);
}

// Ports bound by sockets. A wildcard is placed against a snapshot at most
// 250 ms old (taking one costs about a millisecond); a specific block
// against one taken in this turn of the loop, so a burst of specific
// requests costs one query per turn, not one each.
const port_bitmap* server::held_ports(protocol p, port_range request, std::error_code& ec) {
  if (request.is_wildcard()) {
    recent_held_ = detail::recent_held_ports(p, ec);
    return &recent_held_;
  }
  auto& held = held_this_turn_[p == protocol::tcp ? 0 : 1];
  if (!held) {
    held = detail::platform::held_ports(p, port_range(1, port_range::max_port), ec);
    if (ec) {
      held.reset();
      return nullptr;
    }
  }
  return &*held;
}

bool server::may_persist(const connection& c) const {
  if (c.peer.uid == 0) return true;
  const auto group = opts_.rules.persistent_group;
  return group && peer_in_group(c.fd.get(), c.peer, *group);
}

std::error_code server::persistent(connection& c, const wire::request& q, wire::reply& r, outcome& out) {
  if (!may_persist(c)) return error::privilege_required;
  if (q.kind == wire::op::persistent_apply) {
    store_.refresh(true);
    out.defer = out.must_write = true; // fails if the kernel list cannot be written
    return {};
  }
  const port_range range(q.first, q.count);
  if (auto ec = range.validate(false)) return ec;
  const detail::linux_store::entry e{q.proto, range};
  std::error_code ec;
  if (q.kind == wire::op::persistent_remove) {
    auto after = detail::linux_store::remove(e, ec);
    if (ec) return ec;
    store_.set(std::move(after));
  } else {
    // `portres add --force` (flag_force): the caller already proved its rights.
    const bool force = (q.flags & wire::flag_force) != 0;
    const auto after = detail::linux_store::add(e, table_.ranges(q.proto), [&](const auto& stored) {
      const auto* foreign = kernel_.foreign(true);
      if (force || !foreign || !meets_ephemeral(range)) return std::error_code();
      std::uint32_t remaining = 0;
      return detail::reserved_ports_owner::check_share(*foreign, wanted_with(stored), range, ephemeral(), remaining);
    }, ec);
    if (ec) return ec;
    store_.set(after);
    r.token = detail::linux_store::token_of(e).value();
    out.created = e; // taken back if the kernel list cannot be written
  }
  kernel_.touch();
  out.defer = true;
  return {};
}

} // namespace portres::portresd
