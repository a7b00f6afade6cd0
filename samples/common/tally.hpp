// Failures counted by kind (samples::error_kind: the errno name where there
// is one), printed the same way by loadgen and gateway in text and JSON.
#ifndef PORTRES_SAMPLES_TALLY_HPP
#define PORTRES_SAMPLES_TALLY_HPP

#include "cli/json.hpp"
#include "common/net.hpp"

#include <cstdint>
#include <map>
#include <string>

namespace samples {

class error_tally {
public:
  void add(const std::error_code& ec) { add(error_kind(ec)); }
  void add(const std::string& kind, std::uint64_t n = 1) {
    by_kind_[kind] += n;
    total_ += n;
  }
  void merge(const error_tally& other) {
    for (const auto& [kind, n] : other.by_kind_) add(kind, n);
  }
  void clear() {
    by_kind_.clear();
    total_ = 0;
  }
  std::uint64_t total() const noexcept { return total_; }

  /// " ECONNREFUSED=3 EADDRNOTAVAIL=1" (empty without failures).
  std::string text() const {
    std::string out;
    for (const auto& [kind, n] : by_kind_) out += " " + kind + "=" + std::to_string(n);
    return out;
  }
  /// {"ECONNREFUSED":3,"EADDRNOTAVAIL":1}
  std::string json() const {
    std::string out = "{";
    for (const auto& [kind, n] : by_kind_) {
      if (out.size() > 1) out += ',';
      out += cli::json_string(kind);
      out += ':';
      out += std::to_string(n);
    }
    return out + '}';
  }

private:
  std::map<std::string, std::uint64_t> by_kind_;
  std::uint64_t total_ = 0;
};

} // namespace samples

#endif
