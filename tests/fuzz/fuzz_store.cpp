// The persistent store file: never crashes; what parses, formats back to the same entries.
#include "linux/persistent_store.hpp"

#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::error_code ec;
  const auto entries = portres::detail::linux_store::parse(text, ec);
  if (ec) {
    if (!entries.empty()) std::abort(); // no partial results
    return 0;
  }
  std::error_code again;
  if (portres::detail::linux_store::parse(portres::detail::linux_store::format(entries), again) != entries || again) {
    std::abort();
  }
  return 0;
}
