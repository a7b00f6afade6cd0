#include "loadgen/settings.hpp"

#include "cli/options.hpp"
#include "common/endpoints.hpp"

#include <cstdio>
#include <cstdlib>

namespace loadgen {

namespace {

constexpr const char* usage =
    "usage: loadgen --target HOST:PORT [--target HOST:PORT ...] [--source ADDR ...]\n"
    "               [--concurrency N] [--threads N] [--rate N] [--duration S]\n"
    "               [--ports pool|ephemeral] [--policy sequential|lru|random] [--block N]\n"
    "               [--hold N | --close client|server|rst [--http]] [--json]\n"
    "  --target      where to connect; repeat it and connections go round robin over the targets\n"
    "  --source      a local address to connect from; repeat it to spread connections over several\n"
    "  --concurrency connections in flight at once (default 8)\n"
    "  --threads     event loops, one thread each (default 1); concurrency is shared out among them\n"
    "  --rate        connections opened per second, all threads together (default: no cap)\n"
    "  --duration    seconds to run (default 5)\n"
    "  --ports       pool: a portres socket pool over a reserved block (--block ports, --policy);\n"
    "                ephemeral: the kernel picks the port (with --source: IP_BIND_ADDRESS_NO_PORT)\n"
    "  --hold N      open N connections, keep them open until --duration ends, and report how many\n"
    "                were held and how fast they opened (--rate paces the opening)\n"
    "                Connections still open when the run ends are reset (RST), leaving no TIME_WAIT.\n"
    "  --close       churn: who closes first; default client. client: loadgen, once connected (--http:\n"
    "                once it has judged the status line, without reading the body); server: loadgen\n"
    "                waits for the server to close (--http: reads the whole reply); rst: as client,\n"
    "                with an abortive close (RST, no TIME_WAIT)\n"
    "  --http        churn: send an HTTP/1.0 GET on each connection and read the reply; a final status\n"
    "                other than 2xx/3xx counts as an error of its class (http_4xx, http_5xx), a\n"
    "                connection that ends before a whole status line as http_no_reply; interim 1xx\n"
    "                replies are skipped. Request latency (request_us) runs from the start of the\n"
    "                connection (before connect, as ab's Total) to the judged status line (--close\n"
    "                client, rst) or to the server's close after the whole reply (--close server)\n"
    "  --json        the summary as one JSON object (no progress lines)\n"
    "Exit codes: 0 done (failures are counted, not fatal), 1 could not start, 2 bad usage.\n";

close_style close_of(const std::string& text) {
  if (text == "client") return close_style::client;
  if (text == "server") return close_style::server;
  if (text == "rst") return close_style::rst;
  throw cli::usage_error("--close must be client, server or rst, not '" + text + "'");
}

} // namespace

settings parse(int argc, char** argv) {
  const cli::options o(argc, argv,
                       {"target", "source", "concurrency", "threads", "hold", "rate", "duration", "ports", "policy",
                        "close", "block"},
                       {"http", "json", "help"});
  if (o.flag("help")) {
    std::fputs(usage, stdout);
    std::exit(0);
  }
  if (!o.positional().empty()) throw cli::usage_error("unexpected argument '" + o.positional().front() + "' (see --help)");
  settings s;
  if (!o.has("target")) throw cli::usage_error("--target HOST:PORT is required (repeat it for several targets)");
  s.targets = samples::parse_endpoints(o.all("target"), "--target");
  s.sources = samples::parse_sources(o.all("source"), s.targets);
  s.concurrency = o.number("concurrency", 8, 1, 10000);
  s.threads = o.number("threads", 1, 1, 64);
  if (s.threads > s.concurrency) {
    throw cli::usage_error("--threads " + std::to_string(s.threads) + " needs --concurrency of at least as many");
  }
  s.hold = o.number("hold", 0, 1, 1000000); // absent: 0, churn
  s.rate = static_cast<double>(o.number("rate", 0, 0, 10000000));
  s.duration = std::chrono::seconds(o.number("duration", 5, 1, 3600));
  const auto ports = o.text("ports", "pool");
  if (ports != "pool" && ports != "ephemeral") throw cli::usage_error("--ports must be pool or ephemeral, not '" + ports + "'");
  s.pool = ports == "pool";
  if (!s.pool && (o.has("block") || o.has("policy"))) {
    throw cli::usage_error("--block and --policy apply to --ports pool (the kernel chooses ephemeral ports)");
  }
  s.block = static_cast<std::uint32_t>(o.number("block", 4096, 1, 16384));
  s.policy = o.policy("policy", portres::port_policy::lru);
  s.close = close_of(o.text("close", "client"));
  s.http = o.flag("http");
  if (s.hold > 0 && (o.has("close") || s.http)) {
    throw cli::usage_error("--close and --http apply to churn; --hold keeps its connections open and idle");
  }
  s.json = o.flag("json");
  return s;
}

} // namespace loadgen
