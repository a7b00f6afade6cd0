// portres: the netsh-like command-line front end.
//
//   portres add    --protocol tcp --start 50000 --count 20   create a persistent reservation
//   portres delete --protocol tcp --start 50000 --count 20   delete it
//   portres lookup --protocol tcp --start 50000 --count 20   print its token (changes at reboot)
//   portres show   [--protocol tcp|udp]                      persistent and live runtime reservations
//   portres usage  --protocol tcp --start N --count N        which ports of a block are in use, by whom
//   portres apply                                            re-apply persistent reservations (boot)
//   portres selftest                                         conformance checks against this OS (selftest.cpp)
//   --json on any command; exit codes below.
#include "cli/dll_search.hpp"
#include "cli/json.hpp"
#include "cli/options.hpp"
#include "selftest.hpp"

#include <portres/portres.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>
#include <string>
#include <string_view>

namespace {

// Distinct exit codes, so scripts can tell failures apart.
enum exit_code : int {
  ok = 0,
  failed = 1,
  usage = 2,
  needs_privilege = 3,
  not_supported = 4,
  conflict = 5,
  not_found = 6,
};

const char* const help_text =
    "usage: portres COMMAND [options] [--json]\n"
    "  add    --protocol tcp|udp --start N --count N   create a persistent reservation (root/administrator)\n"
    "         [--force]                                 Linux: even if it leaves under half the ephemeral range free\n"
    "  delete --protocol tcp|udp --start N --count N   delete a persistent reservation (root/administrator)\n"
    "  lookup --protocol tcp|udp --start N --count N   print the token of a persistent reservation\n"
    "  show   [--protocol tcp|udp]                     list persistent and live runtime reservations\n"
    "  usage  --protocol tcp|udp --start N --count N   list the sockets on a block's ports (TIME_WAIT included)\n"
    "  apply                                           re-apply persistent reservations to the kernel (boot)\n"
    "  selftest                                        check what this OS does (send the --json output to the developers)\n"
    "exit codes: 0 ok, 1 failed, 2 usage, 3 needs root/administrator, 4 not supported here,\n"
    "            5 in use / overlaps, 6 not found\n";

std::string quoted(std::string_view s) { return cli::json_string(s); }

// `add --force`: the library reads the required free share from the environment.
void allow_any_ephemeral_share() {
#if defined(_WIN32)
  _putenv_s("PORTRES_EPHEMERAL_FREE_SHARE", "0");
#else
  ::setenv("PORTRES_EPHEMERAL_FREE_SHARE", "0", 1);
#endif
}

// Linux: how many ephemeral ports would stay free for automatic allocation
// with `block` reserved beside ip_local_reserved_ports; -1 when unknown.
long ephemeral_left_with(portres::port_range block) {
  std::ifstream range_in("/proc/sys/net/ipv4/ip_local_port_range");
  std::ifstream reserved_in("/proc/sys/net/ipv4/ip_local_reserved_ports");
  unsigned low = 0, high = 0;
  if (!(range_in >> low >> high) || low > high || high > 65535) return -1;
  std::vector<bool> taken(65536, false);
  for (unsigned p = block.first(); p <= block.last(); ++p) taken[p] = true;
  // One read from offset 0: a list longer than a page reads as empty at any other offset.
  std::string list(1 << 20, '\0');
  reserved_in.read(list.data(), static_cast<std::streamsize>(list.size()));
  list.resize(static_cast<std::size_t>(reserved_in.gcount()));
  std::istringstream entries(list);
  std::string item;
  while (std::getline(entries, item, ',')) {
    unsigned a = 0, b = 0;
    const int n = std::sscanf(item.c_str(), "%u-%u", &a, &b);
    if (n < 1) continue;
    if (n == 1) b = a;
    for (unsigned p = a; p <= b && p <= 65535; ++p) taken[p] = true;
  }
  long left = 0;
  for (unsigned p = low; p <= high; ++p) left += taken[p] ? 0 : 1;
  return left;
}

int report_error(const char* what, std::error_code ec, bool json) {
  int code = failed;
  std::string advice;
  if (ec == portres::condition::access_denied) {
    code = needs_privilege;
    advice = " (run as root / administrator)";
  } else if (ec == portres::condition::not_supported) {
    code = not_supported;
    advice = " (" + portres::capabilities().persistent_reason + ")";
  } else if (ec == portres::condition::in_use) {
    code = conflict;
    advice = " (pick another block; 'portres usage' shows who holds its ports)";
  } else if (ec == portres::error::unknown_token) {
    code = not_found;
    advice = " (no persistent reservation has exactly this block; see 'portres show')";
  }
  if (json) {
    std::printf("{\"ok\":false,\"command\":%s,\"error\":%s,\"exit_code\":%d}\n", quoted(what).c_str(),
                quoted(ec.message() + advice).c_str(), code);
  } else {
    std::fprintf(stderr, "portres %s: %s%s\n", what, ec.message().c_str(), advice.c_str());
  }
  return code;
}

int show(const cli::options& opts, bool json) {
  std::string out = json ? "{\"ok\":true,\"persistent\":[" : "";
  bool first = true;
  std::error_code ec;
  // Which registry is in force and what its listing covers (Linux).
  const auto caps = portres::capabilities();
  const auto& mode = caps.coordination;
  if (!json && !mode.empty()) std::printf("mode: %s\n", mode.c_str());
  for (const auto p : {portres::protocol::tcp, portres::protocol::udp}) {
    if (opts.has("protocol") && opts.protocol() != p) continue;
    const auto all = portres::persistent::list(p, ec);
    if (ec) {
      if (!json) std::printf("persistent %s: unavailable (%s)\n", portres::to_string(p), ec.message().c_str());
      continue;
    }
    for (const auto& r : all) {
      if (json) {
        out += std::string(first ? "" : ",") + "{\"protocol\":" + quoted(portres::to_string(p)) +
               ",\"start\":" + std::to_string(r.range.first()) + ",\"count\":" + std::to_string(r.range.count()) +
               ",\"token\":" + quoted(portres::to_string(r.token)) + "}";
      } else {
        std::printf("persistent %s %s token %s\n", portres::to_string(p), portres::to_string(r.range).c_str(),
                    portres::to_string(r.token).c_str());
      }
      first = false;
    }
  }
  out += json ? "],\"runtime\":[" : "";
  first = true;
  const auto live = portres::list_runtime(ec);
  // A listing that failed is said, never shown as a shorter one (Windows
  // has no runtime listing at all: not a failure).
  const bool listing_failed = ec && ec != portres::error::os_unsupported;
  const auto listing_error = listing_failed ? ec.message() : std::string();
  if (ec && !json) std::printf("runtime: unavailable (%s)\n", ec.message().c_str());
  for (const auto& e : live) {
    if (opts.has("protocol") && opts.protocol() != e.proto) continue;
    if (json) {
      out += std::string(first ? "" : ",") + "{\"protocol\":" + quoted(portres::to_string(e.proto)) +
             ",\"start\":" + std::to_string(e.range.first()) + ",\"count\":" + std::to_string(e.range.count()) +
             ",\"pid\":" + std::to_string(e.owner_pid) + ",\"uid\":" + std::to_string(e.owner_uid) +
             (e.token ? ",\"token\":" + quoted(portres::to_string(e.token)) : std::string()) + "}";
    } else {
      // Others' tokens are hidden by the broker; only the caller's own are printed.
      const auto uid = caps.machine_wide ? " uid " + std::to_string(e.owner_uid) : std::string();
      std::printf("runtime    %s %s pid %u%s%s\n", portres::to_string(e.proto), portres::to_string(e.range).c_str(),
                  e.owner_pid, uid.c_str(), e.token ? (" token " + portres::to_string(e.token)).c_str() : "");
    }
    first = false;
  }
  if (json) {
    out += "],\"mode\":" + quoted(mode) + ",\"state_damage\":" + quoted(caps.state_damage);
    if (listing_failed) {
      out.replace(0, std::string_view("{\"ok\":true").size(), "{\"ok\":false");
      out += ",\"error\":" + quoted("runtime reservations: " + listing_error) + ",\"exit_code\":" + std::to_string(failed);
    }
    std::printf("%s}\n", out.c_str());
  } else if (!caps.state_damage.empty()) {
    std::printf("state damage: %s\n", caps.state_damage.c_str());
  }
  return listing_failed ? failed : ok;
}

int usage_of(const cli::options& opts, bool json) {
  const auto p = opts.protocol();
  const auto range = opts.range(false);
  std::error_code ec;
  const auto users = portres::port_usage(p, range, ec);
  if (ec) return report_error("usage", ec, json);
  if (json) {
    std::string out = "{\"ok\":true,\"protocol\":" + quoted(portres::to_string(p)) + ",\"in_use\":[";
    for (std::size_t i = 0; i < users.size(); ++i) {
      out += std::string(i ? "," : "") + "{\"port\":" + std::to_string(users[i].port) + ",\"state\":" +
             quoted(users[i].state) + ",\"pid\":" + std::to_string(users[i].pid) + "}";
    }
    std::printf("%s],\"free\":%zu}\n", out.c_str(), static_cast<std::size_t>(range.count()) - users.size());
    return ok;
  }
  for (const auto& u : users) {
    std::printf("%s %u %s pid %s\n", portres::to_string(p), u.port, u.state.c_str(),
                u.pid ? std::to_string(u.pid).c_str() : "-");
  }
  std::printf("%zu socket(s) on %s %s\n", users.size(), portres::to_string(p), portres::to_string(range).c_str());
  return ok;
}

} // namespace

int main(int argc, char** argv) {
  cli::restrict_dll_search();
  bool json = false;
  try {
    const cli::options opts(argc, argv, {"protocol", "start", "count"}, {"json", "help", "force"});
    json = opts.flag("json");
    if (opts.flag("help") || opts.positional().empty()) {
      std::printf("%s", help_text);
      return opts.flag("help") ? ok : usage;
    }
    const auto command = opts.positional().front();
    std::error_code ec;
    if (command == "add" || command == "delete" || command == "lookup") {
      const auto p = opts.protocol();
      const auto range = opts.range(false);
      portres::reservation_token token;
      if (command == "add" && opts.flag("force")) allow_any_ephemeral_share();
      if (command == "add") token = portres::persistent::create(p, range, ec);
      if (ec == portres::error::ephemeral_starved) {
        const long left = ephemeral_left_with(range);
        if (left >= 0) {
          std::fprintf(stderr, "portres add: only %ld ephemeral ports would remain free for automatic allocation\n", left);
        }
      }
      if (command == "lookup") token = portres::persistent::lookup(p, range, ec);
      if (command == "delete") portres::persistent::remove(p, range, ec);
      if (ec) return report_error(command.c_str(), ec, json);
      if (json) {
        std::printf("{\"ok\":true,\"command\":%s,\"protocol\":%s,\"start\":%u,\"count\":%u%s}\n",
                    quoted(command).c_str(), quoted(portres::to_string(p)).c_str(), range.first(), range.count(),
                    token ? (",\"token\":" + quoted(portres::to_string(token))).c_str() : "");
      } else if (token) {
        std::printf("%s %s %s token %s\n", command == "add" ? "added" : "found", portres::to_string(p),
                    portres::to_string(range).c_str(), portres::to_string(token).c_str());
      } else {
        std::printf("deleted %s %s\n", portres::to_string(p), portres::to_string(range).c_str());
      }
      return ok;
    }
    if (command == "show") return show(opts, json);
    if (command == "selftest") return cli::selftest(json);
    if (command == "usage") return usage_of(opts, json);
    if (command == "apply") {
      portres::persistent::apply(ec);
      if (ec) return report_error("apply", ec, json);
      std::printf(json ? "{\"ok\":true,\"command\":\"apply\"}\n" : "applied persistent reservations\n");
      return ok;
    }
    throw cli::usage_error("unknown command '" + command + "' (add, delete, lookup, show, usage, apply, selftest)");
  } catch (const cli::usage_error& e) {
    if (json) {
      std::printf("{\"ok\":false,\"error\":%s,\"exit_code\":2}\n", quoted(e.what()).c_str());
    } else {
      std::fprintf(stderr, "portres: %s\n", e.what());
    }
    return usage;
  }
}
