#include "portresd/credentials.hpp"

#include "linux/state_files.hpp"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 // Linux 6.5
#endif

namespace portres::portresd {
namespace {

constexpr int cap_net_bind_service = 10;

// CapEff of /proc/<pid>/status; nullopt when unreadable.
std::optional<std::uint64_t> effective_caps(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("CapEff:", 0) != 0) continue;
    const auto first = line.find_first_not_of(" \t", 7);
    std::uint64_t caps = 0;
    if (first == std::string::npos ||
        std::from_chars(line.data() + first, line.data() + line.size(), caps, 16).ec != std::errc{})
      return std::nullopt;
    return caps;
  }
  return std::nullopt;
}

std::optional<ino_t> user_namespace(const std::string& pid) {
  struct stat st {};
  if (::stat(("/proc/" + pid + "/ns/user").c_str(), &st) != 0) return std::nullopt;
  return st.st_ino;
}

} // namespace

std::optional<ucred> peer_of(int fd) {
  ucred peer{};
  socklen_t len = sizeof peer;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0) return std::nullopt;
  return peer;
}

bool peer_in_group(int fd, const ucred& peer, std::uint32_t gid) {
  if (peer.gid == gid) return true;
  std::vector<gid_t> groups(64);
  socklen_t len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) != 0) {
    if (errno != ERANGE) return false;
    groups.resize(len / sizeof(gid_t)); // the kernel said how much it needs
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) != 0) return false;
  }
  groups.resize(len / sizeof(gid_t));
  for (const auto g : groups) {
    if (g == gid) return true;
  }
  return false;
}

bool peer_may_bind_privileged(int fd, const ucred& peer) {
  if (peer.uid == 0) return true;
  int raw = -1;
  socklen_t len = sizeof raw;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &raw, &len) != 0 || raw < 0) return false;
  const detail::linux_files::unique_fd pidfd(raw);
  const auto pid = std::to_string(peer.pid);
  // A capability counts only in the user namespace that owns our network
  // namespace: ours (a process root in a user namespace of its own is not).
  const auto theirs = user_namespace(pid);
  const auto caps = effective_caps(peer.pid);
  if (!theirs || theirs != user_namespace("self") || !caps) return false;
  // Still the same process? A pidfd becomes readable when its process exits;
  // until then its pid cannot have been reused for what we just read.
  pollfd p{pidfd.get(), POLLIN, 0};
  if (::poll(&p, 1, 0) != 0) return false;
  return (*caps >> cap_net_bind_service & 1u) != 0;
}

std::uint32_t unprivileged_port_start() {
  std::ifstream in("/proc/sys/net/ipv4/ip_unprivileged_port_start");
  std::uint32_t start = 1024;
  if (!(in >> start) || start > 65536) return 1024;
  return start;
}

} // namespace portres::portresd
