// portresd's log: stderr (the journal under systemd). Refusals are limited
// per uid and reason to one line every 10 s, which says how many like it
// were held back: a client cannot flood the log.
#ifndef PORTRES_PROGRAMS_PORTRESD_LOG_HPP
#define PORTRES_PROGRAMS_PORTRESD_LOG_HPP

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>

namespace portres::portresd {

void log(const char* format, ...) __attribute__((format(printf, 1, 2)));

class refusal_log {
public:
  /// Logs "refused <what> (uid U): <why>" unless one for this uid and `why`
  /// went out in the last 10 s.
  void note(std::uint32_t uid, const std::string& what, const std::string& why);
  /// Logs `text` unless the same text went out in the last 10 s.
  void problem(const std::string& text);

private:
  // Logs `text` under `key` unless that key's last line is under 10 s old.
  void limited(std::uint32_t uid, const std::string& key, const std::string& text);
  struct line {
    std::chrono::steady_clock::time_point last;
    unsigned held_back = 0;
  };
  std::map<std::pair<std::uint32_t, std::string>, line> lines_;
};

} // namespace portres::portresd

#endif
