// ip_local_reserved_ports and "first-last" spans: never crash; lists round-trip.
#include "core/block_placement.hpp"
#include "linux/state_files.hpp"

#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  namespace files = portres::detail::linux_files;
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (const auto ports = files::parse_port_list(text)) {
    const auto again = files::parse_port_list(files::format_port_list(*ports));
    if (!again || !(*again == *ports)) std::abort();
  }
  if (const auto span = portres::detail::parse_port_span(text.c_str())) {
    if (span->validate(false)) std::abort();
  }
  return 0;
}
