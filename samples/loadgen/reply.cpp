#include "loadgen/reply.hpp"

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
  for (std::size_t i = 0; i < data.size() && !settled_; ++i) {
    const char c = data[i];
    if (interim_) { // a 1xx's header lines end at an empty line; the next status line follows
      if (c == '\n') {
        interim_ = !blank_;
        blank_ = true;
      } else if (c != '\r') {
        blank_ = false;
      }
    } else if (c == '\n') { // a whole status line: an interim 1xx, or the final one
      interim_ = status_line(line_) && line_[9] == '1';
      blank_ = true;
      settled_ = !interim_;
      if (interim_) line_.clear();
    } else if (line_.size() < limit) {
      line_ += c;
      settled_ = line_.size() == limit && !status_line(line_); // cannot become one
    }
  }
}

std::string reply_head::failure() const {
  if (!settled_) return "http_no_reply";
  if (!status_line(line_) || line_[9] < '2' || line_[9] > '5') return "http_bad_status";
  if (line_[9] == '2' || line_[9] == '3') return {};
  return std::string("http_") + line_[9] + "xx";
}

} // namespace loadgen
