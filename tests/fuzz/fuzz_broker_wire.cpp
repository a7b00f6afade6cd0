// portresd's wire format (requests from any local user, replies from the
// daemon): never crashes; accepted messages re-encode to the same bytes.
#include "linux/broker_protocol.hpp"

#include <cstdlib>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  namespace w = portres::detail::broker_wire;
  const std::span<const std::uint8_t> bytes(data, size);
  if (const auto q = w::parse_request(bytes)) {
    if (w::encode(*q) != std::vector<std::uint8_t>(data, data + size)) std::abort();
  }
  if (const auto r = w::parse_reply(bytes)) {
    if (r->entries.size() > w::max_entries_per_reply) std::abort();
    const auto again = w::parse_reply(w::encode(*r));
    if (!again || again->result != r->result || again->entries.size() != r->entries.size() ||
        again->first != r->first || again->count != r->count || again->token != r->token) {
      std::abort();
    }
  }
  return 0;
}
