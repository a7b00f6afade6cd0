#include "portresd/log.hpp"

#include <cstdarg>
#include <cstdio>

namespace portres::portresd {

void log(const char* format, ...) {
  std::va_list args;
  va_start(args, format);
  std::fputs("portresd: ", stderr);
  std::vfprintf(stderr, format, args);
  std::fputc('\n', stderr);
  va_end(args);
}

void refusal_log::note(std::uint32_t uid, const std::string& what, const std::string& why) {
  limited(uid, why, "refused " + what + " (uid " + std::to_string(uid) + "): " + why);
}

void refusal_log::problem(const std::string& text) { limited(~std::uint32_t{0}, text, text); }

void refusal_log::limited(std::uint32_t uid, const std::string& key, const std::string& text) {
  constexpr auto quiet = std::chrono::seconds(10);
  const auto now = std::chrono::steady_clock::now();
  if (lines_.size() > 4096) { // forget the quiet ones: a bounded table
    std::erase_if(lines_, [&](const auto& e) { return now - e.second.last > quiet; });
  }
  auto [it, fresh] = lines_.try_emplace({uid, key});
  auto& l = it->second;
  if (!fresh && now - l.last < quiet) {
    ++l.held_back;
    return;
  }
  if (l.held_back > 0) {
    log("%s [%u like it in the last %lld s not logged]", text.c_str(), l.held_back,
        static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(now - l.last).count()));
  } else {
    log("%s", text.c_str());
  }
  l.last = now;
  l.held_back = 0;
}

} // namespace portres::portresd
