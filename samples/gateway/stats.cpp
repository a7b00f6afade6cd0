#include "gateway/stats.hpp"

#include "cli/json.hpp"
#include "common/endpoints.hpp"

#include <cstdio>

namespace gateway {

namespace {
using ull = unsigned long long;

std::string free_text(const portres::socket_pool<tcp>* pool, const tcp::endpoint& peer) {
  const auto n = free_ports(pool, peer);
  return n ? std::to_string(*n) : std::string(pool ? "n/a" : "n/a (kernel)");
}
} // namespace

std::optional<std::size_t> free_ports(const portres::socket_pool<tcp>* pool, const tcp::endpoint& peer) {
  if (!pool) return std::nullopt;
  return pool->headroom(peer).free_ports;
}

stats_view::stats_view(const relay& r, const portres::socket_pool<tcp>* pool)
    : relay_(r), pool_(pool), start_(std::chrono::steady_clock::now()), last_(start_) {}

void stats_view::print() {
  const auto now = std::chrono::steady_clock::now();
  const auto& c = relay_.figures();
  const double span = std::chrono::duration<double>(now - last_).count();
  std::string per;
  for (const auto& u : c.upstreams) {
    per += (per.empty() ? "" : " | ") + samples::to_string(u.at) + " live " + std::to_string(u.live) + " free " +
           free_text(pool_, u.at);
  }
  std::printf("[%5.0fs] %6.0f req/s  relayed %llu  upstream errors %llu%s  %s\n",
              std::chrono::duration<double>(now - start_).count(),
              span > 0 ? static_cast<double>(c.requests - last_requests_) / span : 0.0, static_cast<ull>(c.relayed),
              static_cast<ull>(c.upstream_errors), c.upstream_by_kind.text().c_str(), per.c_str());
  std::fflush(stdout);
  last_ = now;
  last_requests_ = c.requests;
}

void print_summary(const counters& c, const portres::socket_pool<tcp>* pool, const portres::port_range* block, bool json) {
  if (json) {
    std::string ups;
    for (const auto& u : c.upstreams) {
      const auto free = free_ports(pool, u.at);
      ups += std::string(ups.empty() ? "" : ",") + "{\"upstream\":" + cli::json_string(samples::to_string(u.at)) +
             ",\"requests\":" + std::to_string(u.requests) + ",\"relayed\":" + std::to_string(u.relayed) +
             ",\"errors\":" + std::to_string(u.errors) + ",\"live\":" + std::to_string(u.live) +
             ",\"free_ports\":" + (free ? std::to_string(*free) : "null") + "}";
    }
    std::printf("{\"ports\":\"%s\",\"requests\":%llu,\"relayed\":%llu,\"upstream_errors\":%llu,"
                "\"upstream_errors_by_kind\":%s,\"abandoned\":%llu,\"client_errors\":%llu,\"upstreams\":[%s]}\n",
                pool ? "pool" : "ephemeral", static_cast<ull>(c.requests), static_cast<ull>(c.relayed),
                static_cast<ull>(c.upstream_errors), c.upstream_by_kind.json().c_str(), static_cast<ull>(c.abandoned),
                static_cast<ull>(c.client_errors), ups.c_str());
    return;
  }
  const auto kinds = c.upstream_by_kind.text();
  std::printf("gateway summary: %llu requests, %llu relayed, %llu upstream errors%s, %llu abandoned by their "
              "clients, %llu client errors",
              static_cast<ull>(c.requests), static_cast<ull>(c.relayed), static_cast<ull>(c.upstream_errors),
              kinds.empty() ? "" : (" (" + kinds.substr(1) + ")").c_str(), static_cast<ull>(c.abandoned),
              static_cast<ull>(c.client_errors));
  if (block && c.highest_port != 0) {
    std::printf(", upstream source ports %u-%u, all inside %s: %s", c.lowest_port, c.highest_port,
                portres::to_string(*block).c_str(),
                block->contains(c.lowest_port) && block->contains(c.highest_port) ? "yes" : "NO");
  }
  std::printf("\n");
  if (c.upstreams.size() > 1) {
    std::string per;
    for (const auto& u : c.upstreams) {
      per += (per.empty() ? "" : ", ") + samples::to_string(u.at) + " " + std::to_string(u.relayed) + " relayed" +
             (u.errors ? " (" + std::to_string(u.errors) + " errors)" : "");
    }
    std::printf("per upstream: %s\n", per.c_str());
  }
}

} // namespace gateway
