#include "loadgen/summary.hpp"

#include "cli/json.hpp"
#include "common/endpoints.hpp"

#include <cstdio>

namespace loadgen {

namespace {

using ull = unsigned long long;

std::string latency_json(const samples::histogram& h) {
  char out[256];
  std::snprintf(out, sizeof out,
                "{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,\"mean\":%.1f,\"samples\":%llu}",
                h.percentile_us(0.5), h.percentile_us(0.9), h.percentile_us(0.99), h.percentile_us(0.999),
                h.max_us(), h.mean_us(), static_cast<ull>(h.count()));
  return out;
}

std::string latency_text(const samples::histogram& h) {
  char out[256];
  std::snprintf(out, sizeof out, "p50 %.1f us, p90 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us",
                h.percentile_us(0.5), h.percentile_us(0.9), h.percentile_us(0.99), h.percentile_us(0.999), h.max_us());
  return out;
}

std::uint64_t not_opened(const settings& s, const counts& t) {
  const auto tried = t.connections + t.errors.total();
  return s.hold > tried ? s.hold - tried : 0;
}

/// Hold: from the start until the last connection opened.
double open_seconds(const settings& s, const counts& t, clock_type::time_point begin) {
  return s.hold && t.connections ? std::chrono::duration<double>(t.last_open - begin).count() : 0.0;
}

void print_json(const settings& s, const counts& t, double seconds, clock_type::time_point begin) {
  std::string targets, sources;
  for (std::size_t i = 0; i < s.targets.size(); ++i) {
    targets += std::string(i ? "," : "") + "{\"target\":" + cli::json_string(samples::to_string(s.targets[i])) +
               ",\"connections\":" + std::to_string(t.targets[i].connections) +
               ",\"errors\":" + std::to_string(t.targets[i].errors) + ",\"held\":" + std::to_string(t.targets[i].held) + "}";
  }
  for (std::size_t i = 0; i < s.sources.size(); ++i) {
    sources += std::string(i ? "," : "") + cli::json_string(s.sources[i].to_string());
  }
  std::printf("{\"mode\":\"%s\",\"ports\":\"%s\",\"threads\":%zu,\"concurrency\":%zu,\"targets\":[%s],\"sources\":[%s],"
              "\"connections\":%llu,\"errors\":%llu,\"errors_by_kind\":%s,\"seconds\":%.2f,\"connections_per_s\":%.1f,"
              "\"connect_us\":%s,",
              s.hold ? "hold" : "churn", s.pool ? "pool" : "ephemeral", s.threads, s.concurrency, targets.c_str(),
              sources.c_str(), static_cast<ull>(t.connections), static_cast<ull>(t.errors.total()),
              t.errors.json().c_str(), seconds, static_cast<double>(t.connections) / seconds,
              latency_json(t.connect_us).c_str());
  if (s.http) std::printf("\"request_us\":%s,", latency_json(t.request_us).c_str());
  const double opening = open_seconds(s, t, begin);
  std::printf("\"requested\":%zu,\"held\":%llu,\"dropped\":%llu,\"dropped_by_kind\":%s,\"not_opened\":%llu,"
              "\"open_seconds\":%.3f,\"opened_per_s\":%.1f,\"in_flight_at_end\":%llu,\"bytes\":%llu}\n",
              s.hold, static_cast<ull>(t.held), static_cast<ull>(t.dropped), t.drops.json().c_str(),
              static_cast<ull>(not_opened(s, t)), opening,
              opening > 0 ? static_cast<double>(t.connections) / opening : 0.0, static_cast<ull>(t.in_flight_at_end),
              static_cast<ull>(t.bytes));
}

} // namespace

void print_progress(const settings& s, int second, const counts& i) {
  if (s.hold) {
    std::printf("[%3ds] held %llu/%zu  opened %llu/s  errors %llu%s  connect p99 %.1f us\n", second,
                static_cast<ull>(i.held), s.hold, static_cast<ull>(i.connections), static_cast<ull>(i.errors.total()),
                i.errors.text().c_str(), i.connect_us.percentile_us(0.99));
  } else {
    std::printf("[%3ds] %6llu conn/s  errors %llu%s  connect p99 %.1f us\n", second, static_cast<ull>(i.connections),
                static_cast<ull>(i.errors.total()), i.errors.text().c_str(), i.connect_us.percentile_us(0.99));
  }
  std::fflush(stdout);
}

void print_summary(const settings& s, const counts& t, double seconds, clock_type::time_point begin) {
  if (s.json) {
    print_json(s, t, seconds, begin);
    return;
  }
  if (s.hold) {
    const double opening = open_seconds(s, t, begin);
    std::printf("summary: held %llu of %zu connections until the end (%.1f s); opened %llu in %.2f s = %.0f conn/s; "
                "errors %llu%s; dropped %llu%s; not opened %llu\n",
                static_cast<ull>(t.held), s.hold, seconds, static_cast<ull>(t.connections), opening,
                opening > 0 ? static_cast<double>(t.connections) / opening : 0.0, static_cast<ull>(t.errors.total()),
                t.errors.text().c_str(), static_cast<ull>(t.dropped), t.drops.text().c_str(),
                static_cast<ull>(not_opened(s, t)));
  } else {
    std::printf("summary: %llu connections in %.1f s = %.0f conn/s, errors %llu%s; %llu in flight at the end (cut "
                "off, not counted)\n",
                static_cast<ull>(t.connections), seconds, static_cast<double>(t.connections) / seconds,
                static_cast<ull>(t.errors.total()), t.errors.text().c_str(), static_cast<ull>(t.in_flight_at_end));
  }
  std::printf("connect latency: %s; %llu bytes received\n", latency_text(t.connect_us).c_str(),
              static_cast<ull>(t.bytes));
  if (s.http) {
    const char* until = s.close == close_style::server ? "the server's close" : "the status line";
    std::printf("request latency (connection start to %s): %s\n", until, latency_text(t.request_us).c_str());
  }
  if (s.targets.size() > 1) {
    std::string line;
    for (std::size_t i = 0; i < s.targets.size(); ++i) {
      line += (i ? ", " : "") + samples::to_string(s.targets[i]) + " " + std::to_string(t.targets[i].connections) +
              (s.hold ? " opened, " + std::to_string(t.targets[i].held) + " held" : " connections") +
              (t.targets[i].errors ? ", " + std::to_string(t.targets[i].errors) + " errors" : "");
    }
    std::printf("per target: %s\n", line.c_str());
  }
}

} // namespace loadgen
