// gateway: a high-churn HTTP/1.0 relay. For each client request it takes a
// pre-associated socket from a portres pool, connects to the next upstream in
// turn, relays the request and the reply, and closes both. One pool over one
// block serves every upstream: a port is free towards an upstream while no
// live connection uses it towards that upstream.
//
//   gateway --listen 127.0.0.1:8080 --upstream 127.0.0.1:9000 [--upstream ...] [--source ADDR ...]
//   gateway --listen 127.0.0.1:0 --builtin-upstream --duration 10 --stats
#include "cli/options.hpp"
#include "common/endpoints.hpp"
#include "common/net.hpp"
#include "gateway/relay.hpp"
#include "gateway/stats.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>

#include <csignal>
#include <cstdio>
#include <functional>
#include <memory>

namespace {

using gateway::tcp;

constexpr const char* usage =
    "usage: gateway --listen HOST:PORT (--upstream HOST:PORT ... | --builtin-upstream) [--source ADDR ...]\n"
    "               [--ports pool|ephemeral] [--policy sequential|lru|random] [--block N] [--duration S]\n"
    "               [--stats] [--json]\n"
    "  --upstream  where requests go; repeat it and requests go round robin over the upstreams\n"
    "  --builtin-upstream  also serve as an upstream of its own (answers 'ok'), for tests and demos\n"
    "  --source    a local address to connect upstream from; repeat it to spread over several\n"
    "  --ports     pool: one portres socket pool over one block (--block ports) for every upstream;\n"
    "              ephemeral: the kernel picks the port\n"
    "  --duration  seconds to run (default: until SIGINT or SIGTERM)\n"
    "  --stats     a stats line every second: req/s, and per upstream the connections open now and the\n"
    "              ports still free towards it; SIGUSR1 prints one at any time\n"
    "  --json      the final summary as JSON (upstream errors by errno name)\n";

std::unique_ptr<portres::socket_pool<tcp>> make_pool(asio::io_context& io, const portres::runtime_reservation& block,
                                                     const std::vector<asio::ip::address>& sources,
                                                     const tcp::endpoint& first, portres::port_policy policy) {
  portres::socket_pool<tcp>::options opts;
  opts.policy = policy;
  opts.low_water = 32;
  opts.high_water = 128;
  opts.max_waiters = 4096;
  // A port whose last connection is in TIME_WAIT can be bound again with
  // SO_REUSEADDR (set on Linux only: net.hpp); with TCP timestamps on,
  // connect() takes over the TIME_WAIT 4-tuple at once (tcp_tw_reuse
  // governs only autobind).
  opts.configure = samples::configure_client_socket;
  return std::make_unique<portres::socket_pool<tcp>>(io.get_executor(), block, samples::pool_sources(sources, first),
                                                     opts);
}

} // namespace

int main(int argc, char** argv) {
  try {
    const cli::options o(argc, argv, {"listen", "upstream", "source", "ports", "policy", "block", "duration"},
                         {"builtin-upstream", "stats", "json", "help"});
    if (o.flag("help")) {
      std::fputs(usage, stdout);
      return 0;
    }
    if (!o.positional().empty()) throw cli::usage_error("unexpected argument '" + o.positional().front() + "' (see --help)");
    const auto listen_at = samples::parse_endpoint(o.text("listen", "127.0.0.1:8080"), "--listen", true);
    const auto ports = o.text("ports", "pool");
    if (ports != "pool" && ports != "ephemeral") throw cli::usage_error("--ports must be pool or ephemeral, not '" + ports + "'");
    if (!o.has("upstream") && !o.flag("builtin-upstream")) {
      throw cli::usage_error("name an upstream: --upstream HOST:PORT (repeatable) or --builtin-upstream");
    }
    auto upstreams = samples::parse_endpoints(o.all("upstream"), "--upstream");
    const auto policy = o.policy("policy", portres::port_policy::lru);
    const auto block_size = static_cast<std::uint32_t>(o.number("block", 4096, 1, 16384));
    const auto duration = o.number("duration", 0, 0, 86400);

    asio::io_context io;
    tcp::acceptor builtin(io);
    if (o.flag("builtin-upstream")) {
      builtin = samples::make_listener(io, {asio::ip::address_v4::loopback(), 0});
      upstreams.insert(upstreams.begin(), builtin.local_endpoint());
      asio::co_spawn(io, gateway::builtin_upstream(builtin), asio::detached);
    }
    const auto sources = samples::parse_sources(o.all("source"), upstreams);
    samples::raise_descriptor_limit(); // each relayed request holds two descriptors
    auto listener = samples::make_listener(io, listen_at, 4096);

    portres::runtime_reservation block;
    std::unique_ptr<portres::socket_pool<tcp>> pool;
    if (ports == "pool") {
      block = portres::acquire(io.get_executor(), portres::protocol::tcp, portres::port_range::wildcard(block_size));
      pool = make_pool(io, block, sources, upstreams.front(), policy);
    }
    gateway::relay relay(listener, upstreams, sources, pool.get());
    gateway::stats_view view(relay, pool.get());
    // Signals are caught before the first line says the gateway is ready.
    asio::signal_set stop(io, SIGINT, SIGTERM);
    stop.async_wait([&](std::error_code, int) { io.stop(); });
#if defined(SIGUSR1)
    asio::signal_set on_demand(io, SIGUSR1);
    std::function<void()> listen_usr1 = [&] {
      on_demand.async_wait([&](std::error_code ec, int) {
        if (ec) return;
        view.print();
        listen_usr1();
      });
    };
    listen_usr1();
#endif
    std::string names, from;
    for (const auto& u : upstreams) names += (names.empty() ? "" : ", ") + samples::to_string(u);
    for (const auto& a : sources) from += (from.empty() ? " from " : ", ") + a.to_string();
    std::printf("gateway listening on %s, upstream%s %s, upstream ports: %s%s\n",
                samples::to_string(listener.local_endpoint()).c_str(), upstreams.size() > 1 ? "s" : "", names.c_str(),
                pool ? ("pool over block " + portres::to_string(block.range()) + " (" + portres::to_string(policy) + ")").c_str()
                     : "kernel autobind",
                from.c_str());
    std::fflush(stdout);
    relay.start();

    asio::steady_timer tick(io);
    std::function<void()> every_second = [&] {
      tick.expires_after(std::chrono::seconds(1));
      tick.async_wait([&](std::error_code ec) {
        if (ec) return;
        view.print();
        every_second();
      });
    };
    if (o.flag("stats")) every_second();
    if (duration > 0) {
      io.run_for(std::chrono::seconds(duration));
    } else {
      io.run();
    }
    const auto range = block.range();
    gateway::print_summary(relay.figures(), pool.get(), pool ? &range : nullptr, o.flag("json"));
    return 0;
  } catch (const cli::usage_error& e) {
    std::fprintf(stderr, "gateway: %s\n", e.what());
    return 2;
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "gateway: %s\n", e.what());
    return 1;
  }
}
