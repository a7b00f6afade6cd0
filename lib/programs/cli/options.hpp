// A small command-line parser shared by the samples: "--name value" pairs,
// "--flag" switches, and checked conversions with messages that say what to do.
#ifndef PORTRES_PROGRAMS_CLI_OPTIONS_HPP
#define PORTRES_PROGRAMS_CLI_OPTIONS_HPP

#include "portres/types.hpp"

#include <charconv>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace cli {

/// A usage error: the message is printed, the program exits with code 2.
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// `s` as a T when the whole of it is one number in [low, high] (NaN is in no
/// range); nullopt otherwise, so that a typo never becomes a zero or an endless run.
template <class T>
std::optional<T> checked_number(const std::string& s, T low, T high) {
  T v{};
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || r.ec != std::errc{} || r.ptr != s.data() + s.size() || !(v >= low && v <= high)) return std::nullopt;
  return v;
}

class options {
public:
  /// `flags` take no value; every other "--name" takes one.
  options(int argc, char** argv, std::set<std::string> valued, std::set<std::string> flags) {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg.rfind("--", 0) != 0) {
        positional_.push_back(arg);
        continue;
      }
      const std::string name = arg.substr(2);
      if (flags.contains(name)) {
        flags_.insert(name);
      } else if (valued.contains(name)) {
        if (i + 1 >= argc) throw usage_error("--" + name + " needs a value");
        values_[name].push_back(argv[++i]);
      } else {
        throw usage_error("unknown option " + arg + " (see --help)");
      }
    }
  }

  bool flag(const std::string& name) const { return flags_.contains(name); }
  bool has(const std::string& name) const { return values_.contains(name); }
  const std::vector<std::string>& positional() const { return positional_; }

  /// The value of `name` (the last one when it was given more than once).
  std::string text(const std::string& name, const std::string& fallback) const {
    const auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second.back();
  }

  /// Every value of a repeatable option, in the order given (empty when absent).
  std::vector<std::string> all(const std::string& name) const {
    const auto it = values_.find(name);
    return it == values_.end() ? std::vector<std::string>{} : it->second;
  }

  std::uint64_t number(const std::string& name, std::uint64_t fallback, std::uint64_t low, std::uint64_t high) const {
    const auto it = values_.find(name);
    if (it == values_.end()) return fallback;
    const auto& s = it->second.back();
    const auto v = checked_number(s, low, high);
    if (!v) {
      throw usage_error("--" + name + " must be a whole number from " + std::to_string(low) + " to " +
                        std::to_string(high) + ", not '" + s + "'");
    }
    return *v;
  }

  portres::protocol protocol(const std::string& name = "protocol") const {
    const auto p = text(name, "tcp");
    if (p == "tcp") return portres::protocol::tcp;
    if (p == "udp") return portres::protocol::udp;
    throw usage_error("--" + name + " must be tcp or udp, not '" + p + "'");
  }

  /// A port policy: sequential, lru or random.
  portres::port_policy policy(const std::string& name, portres::port_policy fallback) const {
    if (!has(name)) return fallback;
    const auto p = text(name, "");
    for (const auto candidate : {portres::port_policy::sequential, portres::port_policy::lru, portres::port_policy::random}) {
      if (p == portres::to_string(candidate)) return candidate;
    }
    throw usage_error("--" + name + " must be sequential, lru or random, not '" + p + "'");
  }

  /// --start (0 = wildcard where allowed) and --count.
  portres::port_range range(bool allow_wildcard) const {
    if (!has("count")) throw usage_error("--count is required");
    const auto start = number("start", 0, allow_wildcard ? 0 : 1, 65535);
    if (!allow_wildcard && !has("start")) throw usage_error("--start is required (persistent blocks are specific)");
    const auto count = number("count", 0, 1, 65535);
    const portres::port_range r(static_cast<std::uint16_t>(start), static_cast<std::uint32_t>(count));
    if (auto ec = r.validate(allow_wildcard)) throw usage_error("--start/--count: " + ec.message());
    return r;
  }

private:
  std::map<std::string, std::vector<std::string>> values_;
  std::set<std::string> flags_;
  std::vector<std::string> positional_;
};

} // namespace cli

#endif
