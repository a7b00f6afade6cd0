// A runtime registry file: never crashes; accepted records are valid and round-trip.
#include "linux/registry_format.hpp"

#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  namespace f = portres::detail::linux_registry_format;
  const auto r = f::parse(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!r) return 0;
  if (r->range.validate(false)) std::abort();
  const auto again = f::parse(f::format(*r));
  if (!again || again->range != r->range || again->proto != r->proto || again->pid != r->pid) std::abort();
  return 0;
}
