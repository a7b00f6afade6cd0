// Rows of /proc/net/{tcp,udp}[6]: never crashes, whatever the kernel (or a hostile file) says.
#include "linux/proc_net.hpp"

#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  while (!text.empty()) {
    const auto end = text.find('\n');
    const auto row = portres::detail::linux_proc::parse_row(text.substr(0, end));
    if (row && row->local_port > 65535) std::abort();
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
  }
  return 0;
}
