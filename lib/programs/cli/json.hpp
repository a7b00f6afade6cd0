// JSON output for the samples' --json modes.
#ifndef PORTRES_PROGRAMS_CLI_JSON_HPP
#define PORTRES_PROGRAMS_CLI_JSON_HPP

#include <cstdio>
#include <string>
#include <string_view>

namespace cli {

/// `text` as a JSON string literal. Messages can carry what the user typed
/// (an unknown command, a bad number), so quotes, backslashes and control
/// characters are escaped.
inline std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
    case '"': out += "\\\""; break;
    case '\\': out += "\\\\"; break;
    case '\n': out += "\\n"; break;
    case '\r': out += "\\r"; break;
    case '\t': out += "\\t"; break;
    default:
      if (static_cast<unsigned char>(c) < 0x20) {
        char escaped[8];
        std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
        out += escaped;
      } else {
        out += c;
      }
    }
  }
  return out + "\"";
}

} // namespace cli

#endif
