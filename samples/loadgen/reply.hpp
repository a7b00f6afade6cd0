// How loadgen --http judges a reply: by its final status line, as ab and wrk
// do (a 502 from a proxy whose upstream is down is a failed request, not a
// served one). Interim 1xx replies before it (100 Continue, 103 Early Hints)
// are skipped, as RFC 9110 15.2 asks of every client.
#ifndef PORTRES_SAMPLES_LOADGEN_REPLY_HPP
#define PORTRES_SAMPLES_LOADGEN_REPLY_HPP

#include <cstddef>
#include <string>
#include <string_view>

namespace loadgen {

/// The status line of a reply, found while the reply is read and counted.
class reply_head {
public:
  /// Bytes of a status line kept: enough to judge it, whose reason phrase may run on.
  static constexpr std::size_t limit = 256;

  /// Reads `data` (the reply's next bytes) up to the final status line.
  void append(std::string_view data);
  /// Whether the final status line has arrived whole (its line end seen),
  /// or `limit` bytes came that cannot start a status line.
  bool settled() const noexcept { return settled_; }
  /// Empty for a 2xx or 3xx reply; otherwise the failure's kind:
  /// "http_4xx", "http_5xx": the final status's class;
  /// "http_no_reply": the connection ended before a whole final status line
  /// (also after interim 1xx replies only);
  /// "http_bad_status": a line that is not "HTTP/x.y NNN ...".
  std::string failure() const;

private:
  std::string line_;      // the status line being read: its first `limit` bytes
  bool interim_ = false;  // after a 1xx status line: skipping its header lines
  bool blank_ = false;    // in those: nothing but '\r' yet on the current line
  bool settled_ = false;
};

} // namespace loadgen

#endif
