#include "loadgen/reply.hpp"

#include <algorithm>

namespace loadgen {

void reply_head::append(std::string_view data) {
  head_.append(data.substr(0, limit - std::min(limit, head_.size())));
}

bool reply_head::settled() const noexcept {
  return head_.find('\n') != std::string::npos || head_.size() >= limit;
}

std::string reply_head::failure() const {
  const auto eol = head_.find('\n');
  if (eol == std::string::npos) return head_.size() >= limit ? "http_bad_status" : "http_no_reply";
  // RFC 9112: HTTP-version SP status-code SP [reason-phrase]; HTTP-version is "HTTP/" DIGIT "." DIGIT.
  const std::string_view line(head_.data(), eol);
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  const bool ok = line.size() >= 12 && line.substr(0, 5) == "HTTP/" && digit(line[5]) && line[6] == '.' &&
                  digit(line[7]) && line[8] == ' ' && digit(line[9]) && digit(line[10]) && digit(line[11]) &&
                  (line.size() == 12 || line[12] == ' ' || line[12] == '\r');
  if (!ok || line[9] < '1' || line[9] > '5') return "http_bad_status";
  if (line[9] == '2' || line[9] == '3') return {};
  return std::string("http_") + line[9] + "xx";
}

} // namespace loadgen
