// Command-line arguments of the samples and the portres CLI: garbage gives a
// usage error, never a crash; what is accepted is in range.
#include "cli/options.hpp"

#include <cstdlib>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  // Arguments are NUL-separated in the input.
  std::vector<std::string> args{"portres"};
  std::string current;
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] == 0) {
      args.push_back(current);
      current.clear();
    } else {
      current += static_cast<char>(data[i]);
    }
  }
  args.push_back(current);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  try {
    const cli::options o(static_cast<int>(argv.size()), argv.data(), {"protocol", "start", "count", "target", "policy"},
                             {"json", "help"});
    const auto targets = o.all("target");
    if (targets.empty() == o.has("target") || (!targets.empty() && targets.back() != o.text("target", ""))) std::abort();
    (void)o.policy("policy", portres::port_policy::lru);
    (void)o.protocol();
    const auto r = o.range(false);
    if (r.validate(false) || r.is_wildcard()) std::abort();
    const auto n = o.number("count", 1, 1, 65535);
    if (n < 1 || n > 65535) std::abort();
  } catch (const cli::usage_error&) {
  }
  return 0;
}
