#include "loadgen/reply.hpp"

#include <algorithm>

namespace loadgen {

namespace {

// RFC 9112: HTTP-version SP status-code SP [reason-phrase]; HTTP-version is "HTTP/" DIGIT "." DIGIT.
// `line` is the status line, or its first `limit` bytes when it is longer (the reason phrase has no limit).
bool status_line(std::string_view line) {
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  return line.size() >= 12 && line.substr(0, 5) == "HTTP/" && digit(line[5]) && line[6] == '.' && digit(line[7]) &&
         line[8] == ' ' && digit(line[9]) && digit(line[10]) && digit(line[11]) &&
         (line.size() == 12 || line[12] == ' ' || line[12] == '\r');
}

} // namespace

void reply_head::append(std::string_view data) {
  line_end_ = line_end_ || data.find('\n') != std::string_view::npos;
  head_.append(data.substr(0, limit - std::min(limit, head_.size())));
}

bool reply_head::settled() const noexcept {
  // A long status line is read to its end; `limit` bytes that cannot start one settle it.
  return line_end_ || (head_.size() >= limit && !status_line(head_));
}

std::string reply_head::failure() const {
  if (!line_end_) return head_.size() >= limit && !status_line(head_) ? "http_bad_status" : "http_no_reply";
  const std::string_view line(head_.data(), std::min(head_.find('\n'), head_.size()));
  if (!status_line(line) || line[9] < '1' || line[9] > '5') return "http_bad_status";
  if (line[9] == '2' || line[9] == '3') return {};
  return std::string("http_") + line[9] + "xx";
}

} // namespace loadgen
