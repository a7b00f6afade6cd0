// Listings for tools: live reservations from the registry, and the sockets
// on a range of ports with their owning processes (from /proc).
#include "linux/proc_net.hpp"
#include "linux/broker_mode.hpp"
#include "linux/registry.hpp"
#include "platform.hpp"
#include "portres/linux_error.hpp"

#include <gsl/gsl>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>

#include <dirent.h>
#include <unistd.h>

namespace portres::detail::platform {
namespace {

const char* tcp_state_name(unsigned st) {
  static const char* const names[] = {"?", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
                                      "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING"};
  return st < sizeof names / sizeof names[0] ? names[st] : "?";
}

// socket inode -> pid, from /proc/<pid>/fd links ("socket:[inode]").
std::unordered_map<unsigned long, std::uint32_t> socket_owners() {
  std::unordered_map<unsigned long, std::uint32_t> owners;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return owners;
  auto close_proc = gsl::finally([proc] { ::closedir(proc); });
  while (const dirent* p = ::readdir(proc)) {
    char* end = nullptr;
    const unsigned long pid = std::strtoul(p->d_name, &end, 10);
    if (*end != '\0' || pid == 0) continue;
    const std::string fd_dir = std::string("/proc/") + p->d_name + "/fd";
    DIR* fds = ::opendir(fd_dir.c_str());
    if (fds == nullptr) continue; // another user's process without privilege
    while (const dirent* f = ::readdir(fds)) {
      char target[64];
      const auto n = ::readlink((fd_dir + "/" + f->d_name).c_str(), target, sizeof target - 1);
      if (n <= 0) continue;
      target[n] = '\0';
      unsigned long inode = 0;
      if (std::sscanf(target, "socket:[%lu]", &inode) == 1) owners[inode] = gsl::narrow_cast<std::uint32_t>(pid);
    }
    ::closedir(fds);
  }
  return owners;
}

void read_table(const char* path, bool tcp, port_range range,
                const std::unordered_map<unsigned long, std::uint32_t>& owners, std::vector<port_user>& out) {
  std::FILE* file = std::fopen(path, "re");
  if (file == nullptr) return;
  auto close = gsl::finally([file] { std::fclose(file); });
  char line[512];
  while (std::fgets(line, sizeof line, file) != nullptr) {
    const auto row = linux_proc::parse_row(line);
    if (!row || !range.contains(row->local_port)) continue;
    const auto owner = owners.find(row->inode);
    out.push_back({row->local_port, tcp ? tcp_state_name(row->state) : (row->state == 1 ? "CONNECTED" : "BOUND"),
                   row->inode != 0 && owner != owners.end() ? owner->second : 0});
  }
}

} // namespace

std::vector<runtime_entry> runtime_entries(std::error_code& ec) {
  if (const auto& broker = linux_registry_mode().broker) return broker->list(ec);
  std::string reason;
  auto shared = linux_registry_instance(reason);
  if (!shared) {
    ec = linux_error::registry_unavailable;
    return {};
  }
  return linux_runtime_entries(*shared, ec);
}

std::vector<port_user> port_users(protocol p, port_range r, std::error_code& ec) {
  ec.clear();
  const auto owners = socket_owners();
  std::vector<port_user> out;
  const bool tcp = p == protocol::tcp;
  read_table(tcp ? "/proc/net/tcp" : "/proc/net/udp", tcp, r, owners, out);
  read_table(tcp ? "/proc/net/tcp6" : "/proc/net/udp6", tcp, r, owners, out);
  return out;
}

} // namespace portres::detail::platform
