// How loadgen --http judges a reply: by its status line, as ab and wrk do
// (a 502 from a proxy whose upstream is down is a failed request, not a
// served one).
#ifndef PORTRES_SAMPLES_LOADGEN_REPLY_HPP
#define PORTRES_SAMPLES_LOADGEN_REPLY_HPP

#include <cstddef>
#include <string>
#include <string_view>

namespace loadgen {

/// The first bytes of a reply, kept while the rest is read and counted.
class reply_head {
public:
  /// Bytes kept: enough to judge a status line, whose reason phrase may run on.
  static constexpr std::size_t limit = 256;

  /// Keeps what fits of `data` (the reply's next bytes).
  void append(std::string_view data);
  /// Whether the status line has arrived whole (its line end seen), or
  /// `limit` bytes came that cannot start one.
  bool settled() const noexcept;
  /// Empty for a 2xx or 3xx reply; otherwise the failure's kind:
  /// "http_1xx", "http_4xx", "http_5xx"...: the status class;
  /// "http_no_reply": the connection ended before a whole status line;
  /// "http_bad_status": a line that is not "HTTP/x.y NNN ...".
  std::string failure() const;

private:
  std::string head_;
  bool line_end_ = false; // the status line's end came, within `limit` or past it
};

} // namespace loadgen

#endif
