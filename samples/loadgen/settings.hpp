// loadgen's command line: what to connect to, from where, how, and for how long.
#ifndef PORTRES_SAMPLES_LOADGEN_SETTINGS_HPP
#define PORTRES_SAMPLES_LOADGEN_SETTINGS_HPP

#include <portres/types.hpp>

#include <asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace loadgen {

using tcp = asio::ip::tcp;

enum class close_style { client, server, rst };

struct settings {
  std::vector<tcp::endpoint> targets;   ///< --target, repeatable: connections go round robin
  std::vector<asio::ip::address> sources; ///< --source, repeatable; empty: the system chooses
  std::size_t concurrency = 8;          ///< connections in flight at once (churn: workers; hold: openers)
  std::size_t threads = 1;              ///< event loops, one thread each
  std::size_t hold = 0;                 ///< --hold N: open N connections and keep them; 0: churn
  double rate = 0;                      ///< connections opened per second, all threads together (0 = no cap)
  std::chrono::seconds duration{5};
  bool pool = true;                     ///< --ports pool|ephemeral
  portres::port_policy policy = portres::port_policy::lru;
  std::uint32_t block = 4096;
  close_style close = close_style::client;
  bool http = false;
  bool json = false;
};

/// The settings from the command line. Throws cli::usage_error naming the
/// problem; prints the usage and exits 0 on --help.
settings parse(int argc, char** argv);

} // namespace loadgen

#endif
