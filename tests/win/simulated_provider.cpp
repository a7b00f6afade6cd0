#include "win/simulated_provider.hpp"

#include "portres/windows.hpp"
#include "win/winsock_seam.hpp"

#include <asio/detail/win_iocp_io_context.hpp>
#include <asio/post.hpp>

#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <vector>

#include <winsock2.h>
#include <mstcpip.h>
#include <ws2tcpip.h>

namespace portres_test {
namespace {

using portres::port_range;
using portres::protocol;
using portres::reservation_token;

struct sim_reservation {
  protocol proto;
  port_range range;
  SOCKET owner; // INVALID_SOCKET for persistent reservations
};

struct held_call {
  LPWSAOVERLAPPED overlapped;
  DWORD bytes;
};

struct sim_state {
  asio::io_context* io = nullptr;
  simulated_provider::completion_mode mode = simulated_provider::completion_mode::immediate;
  bool administrator = true;
  bool short_response = false;
  std::map<std::uint64_t, sim_reservation> reservations;
  std::map<SOCKET, std::uint64_t> associations;
  std::vector<held_call> pending;
  std::mt19937_64 rng{std::random_device{}()};
  std::uint16_t next_wildcard_base = 0;
};

std::mutex mutex;
sim_state* state = nullptr;

std::optional<protocol> socket_protocol(SOCKET s) {
  WSAPROTOCOL_INFOW info{};
  int size = sizeof info;
  if (::getsockopt(s, SOL_SOCKET, SO_PROTOCOL_INFOW, reinterpret_cast<char*>(&info), &size) != 0) return std::nullopt;
  if (info.iSocketType == SOCK_STREAM && info.iProtocol == IPPROTO_TCP) return protocol::tcp;
  if (info.iSocketType == SOCK_DGRAM && info.iProtocol == IPPROTO_UDP) return protocol::udp;
  return std::nullopt;
}

// A runtime reservation lives as long as its acquiring socket.
void forget_closed_owners() {
  std::erase_if(state->reservations, [](const auto& entry) {
    const SOCKET owner = entry.second.owner;
    int type = 0;
    int size = sizeof type;
    return owner != INVALID_SOCKET &&
           ::getsockopt(owner, SOL_SOCKET, SO_TYPE, reinterpret_cast<char*>(&type), &size) != 0;
  });
}

bool overlaps_existing(protocol p, port_range r) {
  forget_closed_owners();
  for (const auto& [token, res] : state->reservations) {
    if (res.proto == p && res.range.overlaps(r)) return true;
  }
  return false;
}

int fail(int code, LPDWORD bytes) {
  if (bytes) *bytes = 0;
  ::WSASetLastError(code);
  return SOCKET_ERROR;
}

// A successful call: synchronous, or completed through the port as the mode says.
int succeed(SOCKET s, DWORD result_bytes, LPDWORD bytes, LPWSAOVERLAPPED overlapped) {
  if (bytes) *bytes = result_bytes;
  if (overlapped == nullptr) return 0;
  switch (state->mode) {
  case simulated_provider::completion_mode::immediate: {
    // A real provider queues a packet even when the call succeeds at once.
    auto* io = state->io;
    asio::post(*io, [io, overlapped, result_bytes] {
      asio::use_service<asio::detail::win_iocp_io_context>(*io).on_completion(
          static_cast<asio::detail::win_iocp_operation*>(overlapped), 0, result_bytes);
    });
    return 0;
  }
  case simulated_provider::completion_mode::pending:
    state->pending.push_back({overlapped, result_bytes});
    ::WSASetLastError(WSA_IO_PENDING);
    return SOCKET_ERROR;
  case simulated_provider::completion_mode::hang: {
    // A real Winsock I/O that stays pending until cancelled or the socket closes.
    DWORD ignored = 0;
    return ::WSAIoctl(s, SIO_ADDRESS_LIST_CHANGE, nullptr, 0, nullptr, 0, &ignored, overlapped, nullptr);
  }
  }
  return 0;
}

port_range pick_wildcard(protocol p, std::uint32_t count) {
  for (int attempt = 0; attempt < 64; ++attempt) {
    const auto span = 65535u - 50000u - count;
    const auto first = static_cast<std::uint16_t>(50000u + state->rng() % span);
    const port_range candidate(first, count);
    if (!overlaps_existing(p, candidate)) return candidate;
  }
  return {};
}

int WSAAPI sim_ioctl(SOCKET s, DWORD code, LPVOID in, DWORD in_size, LPVOID out, DWORD out_size, LPDWORD bytes,
                     LPWSAOVERLAPPED overlapped, LPWSAOVERLAPPED_COMPLETION_ROUTINE routine) {
  std::lock_guard lock(mutex);
  if (code != SIO_ACQUIRE_PORT_RESERVATION && code != SIO_ASSOCIATE_PORT_RESERVATION &&
      code != SIO_RELEASE_PORT_RESERVATION) {
    return ::WSAIoctl(s, code, in, in_size, out, out_size, bytes, overlapped, routine);
  }
  const auto proto = socket_protocol(s);
  if (!proto) return fail(WSAEOPNOTSUPP, bytes);

  if (code == SIO_ACQUIRE_PORT_RESERVATION) {
    if (in == nullptr || out == nullptr) return fail(WSAEFAULT, bytes);
    if (in_size < sizeof(INET_PORT_RANGE) || out_size < sizeof(INET_PORT_RESERVATION_INSTANCE)) {
      return fail(WSAEINVAL, bytes);
    }
    const auto& wire = *static_cast<const INET_PORT_RANGE*>(in);
    const auto start = ntohs(wire.StartPort); // the wire is big-endian
    if (wire.NumberOfPorts == 0 || std::uint32_t{start} + wire.NumberOfPorts - 1 > 65535) {
      return fail(WSAEINVAL, bytes);
    }
    // A reservation whose socket handle is being reused died with its socket.
    std::erase_if(state->reservations, [s](const auto& entry) { return entry.second.owner == s; });
    port_range granted = start == 0 ? pick_wildcard(*proto, wire.NumberOfPorts) : port_range(start, wire.NumberOfPorts);
    if (granted.count() == 0 || overlaps_existing(*proto, granted)) return fail(WSAEADDRINUSE, bytes);
    std::uint64_t token = 0;
    while (token == 0 || state->reservations.contains(token)) token = state->rng();
    state->reservations[token] = {*proto, granted, s};
    INET_PORT_RESERVATION_INSTANCE result{};
    result.Reservation.StartPort = htons(granted.first());
    result.Reservation.NumberOfPorts = static_cast<USHORT>(granted.count());
    result.Token.Token = token;
    *static_cast<INET_PORT_RESERVATION_INSTANCE*>(out) = result;
    return succeed(s, sizeof result - (state->short_response ? 1 : 0), bytes, overlapped);
  }

  if (in == nullptr) return fail(WSAEFAULT, bytes);
  if (in_size < sizeof(INET_PORT_RESERVATION_TOKEN)) return fail(WSAEINVAL, bytes);
  const auto token = static_cast<const INET_PORT_RESERVATION_TOKEN*>(in)->Token;
  forget_closed_owners();
  const auto it = state->reservations.find(token);

  if (code == SIO_RELEASE_PORT_RESERVATION) {
    if (out_size != 0) return fail(WSAEINVAL, bytes);
    // Only the acquiring socket's process may release a runtime reservation.
    if (it == state->reservations.end() || it->second.owner != s) return fail(WSAEINVAL, bytes);
    state->reservations.erase(it);
    return succeed(s, 0, bytes, overlapped);
  }

  // SIO_ASSOCIATE_PORT_RESERVATION
  if (it == state->reservations.end() || it->second.proto != *proto) return fail(WSAEINVAL, bytes);
  if (it->second.owner == INVALID_SOCKET && !state->administrator) return fail(WSAEACCES, bytes);
  state->associations[s] = token;
  return succeed(s, 0, bytes, overlapped);
}

int WSAAPI sim_bind(SOCKET s, const sockaddr* address, int length) {
  std::lock_guard lock(mutex);
  const auto association = state->associations.find(s);
  if (association == state->associations.end()) return ::bind(s, address, length);
  const auto token = association->second;
  state->associations.erase(association);
  const auto reservation = state->reservations.find(token);
  if (reservation == state->reservations.end()) return ::bind(s, address, length);
  // The OS hands out a port of the block that nobody holds; none left: the bind fails.
  sockaddr_storage local{};
  std::memcpy(&local, address, static_cast<std::size_t>(length));
  const auto range = reservation->second.range;
  for (std::uint32_t port = range.first(); port <= range.last(); ++port) {
    if (local.ss_family == AF_INET6) {
      reinterpret_cast<sockaddr_in6&>(local).sin6_port = htons(static_cast<std::uint16_t>(port));
    } else {
      reinterpret_cast<sockaddr_in&>(local).sin_port = htons(static_cast<std::uint16_t>(port));
    }
    if (::bind(s, reinterpret_cast<const sockaddr*>(&local), length) == 0) return 0;
    if (::WSAGetLastError() != WSAEADDRINUSE && ::WSAGetLastError() != WSAEACCES) return SOCKET_ERROR;
  }
  ::WSASetLastError(WSAEADDRINUSE);
  return SOCKET_ERROR;
}

} // namespace

simulated_provider::simulated_provider(asio::io_context& io) {
  std::lock_guard lock(mutex);
  state = new sim_state;
  state->io = &io;
  auto& seam = portres::detail::win::seam();
  seam.ioctl = sim_ioctl;
  seam.bind = sim_bind;
}

simulated_provider::~simulated_provider() {
  std::lock_guard lock(mutex);
  auto& seam = portres::detail::win::seam();
  seam.ioctl = ::WSAIoctl;
  seam.bind = ::bind;
  delete state;
  state = nullptr;
}

void simulated_provider::set_mode(completion_mode mode) {
  std::lock_guard lock(mutex);
  state->mode = mode;
}

std::size_t simulated_provider::deliver_pending() {
  std::lock_guard lock(mutex);
  auto& service = asio::use_service<asio::detail::win_iocp_io_context>(*state->io);
  for (const auto& call : state->pending) {
    service.on_completion(static_cast<asio::detail::win_iocp_operation*>(call.overlapped), 0, call.bytes);
  }
  const auto count = state->pending.size();
  state->pending.clear();
  return count;
}

void simulated_provider::add_persistent(protocol p, port_range range, reservation_token token) {
  std::lock_guard lock(mutex);
  state->reservations[token.value()] = {p, range, INVALID_SOCKET};
}

void simulated_provider::set_short_response(bool short_response) {
  std::lock_guard lock(mutex);
  state->short_response = short_response;
}

void simulated_provider::set_administrator(bool admin) {
  std::lock_guard lock(mutex);
  state->administrator = admin;
}

} // namespace portres_test
