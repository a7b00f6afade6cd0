// portres::persistent and portres/usage.hpp: argument checks here, the OS work in platform.
#include "portres/persistent.hpp"
#include "portres/usage.hpp"

#include "platform.hpp"

namespace portres::persistent {

reservation_token create(protocol p, port_range range, std::error_code& ec) {
  if ((ec = range.validate(false))) return {};
  return detail::platform::persistent_create(p, range, ec);
}

reservation_token lookup(protocol p, port_range range, std::error_code& ec) {
  if ((ec = range.validate(false))) return {};
  return detail::platform::persistent_lookup(p, range, ec);
}

void remove(protocol p, port_range range, std::error_code& ec) {
  if ((ec = range.validate(false))) return;
  detail::platform::persistent_remove(p, range, ec);
}

std::vector<reservation> list(protocol p, std::error_code& ec) { return detail::platform::persistent_list(p, ec); }

void apply(std::error_code& ec) { detail::platform::persistent_apply(ec); }

reservation_token create(protocol p, port_range range) {
  std::error_code ec;
  const auto token = create(p, range, ec);
  detail::throw_if(ec, "portres::persistent::create");
  return token;
}

reservation_token lookup(protocol p, port_range range) {
  std::error_code ec;
  const auto token = lookup(p, range, ec);
  detail::throw_if(ec, "portres::persistent::lookup");
  return token;
}

void remove(protocol p, port_range range) {
  std::error_code ec;
  remove(p, range, ec);
  detail::throw_if(ec, "portres::persistent::remove");
}

std::vector<reservation> list(protocol p) {
  std::error_code ec;
  auto all = list(p, ec);
  detail::throw_if(ec, "portres::persistent::list");
  return all;
}

void apply() {
  std::error_code ec;
  apply(ec);
  detail::throw_if(ec, "portres::persistent::apply");
}

} // namespace portres::persistent

namespace portres {

std::vector<runtime_entry> list_runtime(std::error_code& ec) { return detail::platform::runtime_entries(ec); }

std::vector<port_user> port_usage(protocol p, port_range range, std::error_code& ec) {
  if ((ec = range.validate(false))) return {};
  return detail::platform::port_users(p, range, ec);
}

} // namespace portres
