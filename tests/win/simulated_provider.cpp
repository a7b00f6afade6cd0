#include "win/simulated_provider.hpp"

#include "portres/windows.hpp"
#include "win/winsock_seam.hpp"

#include <asio/detail/win_iocp_io_context.hpp>
#include <asio/post.hpp>

#include <algorithm>
#include <cstring>
#include <string_view>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include <winsock2.h>
#include <mstcpip.h>
#include <ws2tcpip.h>
#include <windows.h>

namespace portres_test {
namespace {

using portres::port_range;
using portres::protocol;
using portres::reservation_token;

struct sim_reservation {
  sim_reservation() = default;
  sim_reservation(protocol p, port_range r, SOCKET o) : proto(p), range(r), owner(o) {}
  protocol proto = protocol::tcp;
  port_range range;
  SOCKET owner; // INVALID_SOCKET for persistent reservations
  // The address families whose sockets may associate (see sim_ioctl).
  bool serves_v4 = true;
  bool serves_v6 = true;
  std::map<std::uint16_t, SOCKET> handed_out; // port -> the socket bound to it
};

struct held_call {
  LPWSAOVERLAPPED overlapped;
  DWORD bytes;
};

struct sim_state {
  asio::io_context* io = nullptr;
  simulated_provider::completion_mode mode = simulated_provider::completion_mode::immediate;
  bool administrator = true;
  bool refuse_ipv4 = false;
  int exhausted_bind_error = WSAEADDRINUSE;
  bool failed_bind_keeps_association = true;
  DWORD acquire_bytes = sizeof(INET_PORT_RESERVATION_INSTANCE);
  bool zero_token = false;
  DWORD overlapped_error = 0;
  std::map<std::uint64_t, sim_reservation> reservations;
  std::map<SOCKET, std::uint64_t> associations;
  std::vector<held_call> pending;
  std::mt19937_64 rng{std::random_device{}()};
  std::uint16_t next_wildcard_base = 0;
  SOCKET last_acquiring = INVALID_SOCKET;
  std::vector<simulated_provider::ioctl_call> calls;
};

std::mutex mutex;
sim_state* state = nullptr;

int socket_family(SOCKET s) {
  WSAPROTOCOL_INFOW info{};
  int size = sizeof info;
  if (::getsockopt(s, SOL_SOCKET, SO_PROTOCOL_INFOW, reinterpret_cast<char*>(&info), &size) != 0) return AF_UNSPEC;
  return info.iAddressFamily;
}

// The port `s` is bound to, 0 if none (or closed).
std::uint16_t bound_port(SOCKET s) {
  sockaddr_storage local{};
  int size = sizeof local;
  if (::getsockname(s, reinterpret_cast<sockaddr*>(&local), &size) != 0) return 0;
  return ntohs(local.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6&>(local).sin6_port
                                           : reinterpret_cast<const sockaddr_in&>(local).sin_port);
}

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

// The completion packet of a call that succeeded at once. A real provider
// queues it on the completion port during the call, and an io_context
// destroyed before dequeuing it destroys the operation. The simulation cannot
// queue on Asio's port before the engine has handed the operation over
// (release()), so it queues a handler that completes the operation; if the
// io_context is destroyed first, destroying that handler completes the
// operation anyway, so that Asio's shutdown dequeues and destroys it instead
// of waiting forever for its outstanding work.
class queued_packet {
public:
  queued_packet(asio::io_context& io, LPWSAOVERLAPPED overlapped, DWORD bytes, DWORD error = 0)
      : io_(&io), overlapped_(overlapped), bytes_(bytes), error_(error) {}
  queued_packet(queued_packet&& other) noexcept
      : io_(other.io_), overlapped_(std::exchange(other.overlapped_, nullptr)), bytes_(other.bytes_), error_(other.error_) {}
  queued_packet& operator=(queued_packet&&) = delete;
  ~queued_packet() { deliver(); }
  void operator()() { deliver(); }

private:
  void deliver() {
    if (auto* op = std::exchange(overlapped_, nullptr)) {
      asio::use_service<asio::detail::win_iocp_io_context>(*io_).on_completion(
          static_cast<asio::detail::win_iocp_operation*>(op), error_, bytes_);
    }
  }
  asio::io_context* io_;
  LPWSAOVERLAPPED overlapped_;
  DWORD bytes_;
  DWORD error_;
};

// A successful call: synchronous, or completed through the port as the mode says.
int succeed(SOCKET s, DWORD result_bytes, LPDWORD bytes, LPWSAOVERLAPPED overlapped) {
  if (bytes) *bytes = result_bytes;
  if (overlapped == nullptr) return 0;
  switch (state->mode) {
  case simulated_provider::completion_mode::immediate:
    asio::post(*state->io, queued_packet(*state->io, overlapped, result_bytes));
    return 0;
  case simulated_provider::completion_mode::immediate_dequeued_first: {
    // What an io thread's GetQueuedCompletionStatus leaves when it dequeues
    // the packet of an operation not yet handed over: the result stored in
    // the OVERLAPPED and the operation marked ready, so that handing it over
    // (on_pending) queues it again for dispatch.
    auto* op = static_cast<asio::detail::win_iocp_operation*>(overlapped);
    op->Internal = reinterpret_cast<ULONG_PTR>(&asio::error::get_system_category());
    op->Offset = 0;
    op->OffsetHigh = result_bytes;
    asio::use_service<asio::detail::win_iocp_io_context>(*state->io).on_pending(op);
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
  state->calls.push_back({code, s, overlapped != nullptr, std::this_thread::get_id()});
  if (overlapped != nullptr && state->overlapped_error != 0) {
    // Pends, then the port brings the failure (set_overlapped_error).
    asio::post(*state->io, queued_packet(*state->io, overlapped, 0, state->overlapped_error));
    ::WSASetLastError(WSA_IO_PENDING);
    return SOCKET_ERROR;
  }
  // Error tables of the SIO_*_PORT_RESERVATION pages (reference 001, 003):
  // WSAEOPNOTSUPP on a socket other than TCP or UDP.
  const auto proto = socket_protocol(s);
  if (!proto) return fail(WSAEOPNOTSUPP, bytes);

  if (code == SIO_ACQUIRE_PORT_RESERVATION) {
    // WSAEFAULT for pointers outside the address space; WSAEINVAL for a
    // buffer too small or an unacceptable input (reference 003).
    if (in == nullptr || out == nullptr) return fail(WSAEFAULT, bytes);
    if (in_size < sizeof(INET_PORT_RANGE) || out_size < sizeof(INET_PORT_RESERVATION_INSTANCE)) {
      return fail(WSAEINVAL, bytes);
    }
    const auto& wire = *static_cast<const INET_PORT_RANGE*>(in);
    const auto start = ntohs(wire.StartPort); // INET_PORT_RANGE.StartPort: network byte order
    if (wire.NumberOfPorts == 0 || std::uint32_t{start} + wire.NumberOfPorts - 1 > 65535) {
      return fail(WSAEINVAL, bytes);
    }
    // A reservation whose socket handle is being reused died with its socket.
    std::erase_if(state->reservations, [s](const auto& entry) { return entry.second.owner == s; });
    state->last_acquiring = s;
    // StartPort 0 asks for a wildcard block (reference 003 remarks); a block
    // held by another reservation cannot be granted.
    port_range granted = start == 0 ? pick_wildcard(*proto, wire.NumberOfPorts) : port_range(start, wire.NumberOfPorts);
    if (granted.count() == 0 || overlaps_existing(*proto, granted)) return fail(WSAEADDRINUSE, bytes);
    std::uint64_t token = 0;
    while (token == 0 || state->reservations.contains(token)) token = state->rng();
    // Which families the block serves. The pages (001, 003) tie a runtime
    // reservation to its acquiring socket and say nothing of address
    // families. ASSUMPTION (selftest probe_ipv4_on_dual_mode; the other
    // answer: set_ipv4_sockets_refused), as MsQuic's use of dual-mode
    // sockets suggests: a block serves the families its acquiring socket can
    // bind: AF_INET only IPv4; AF_INET6 IPv6, and IPv4 too when IPV6_V6ONLY
    // is off.
    sim_reservation granted_reservation(*proto, granted, s);
    if (socket_family(s) == AF_INET6) {
      DWORD v6_only = 1;
      int size = sizeof v6_only;
      ::getsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, reinterpret_cast<char*>(&v6_only), &size);
      granted_reservation.serves_v4 = v6_only == 0;
    } else {
      granted_reservation.serves_v6 = false;
    }
    state->reservations[token] = granted_reservation;
    INET_PORT_RESERVATION_INSTANCE result{};
    result.Reservation.StartPort = htons(granted.first());
    result.Reservation.NumberOfPorts = static_cast<USHORT>(granted.count());
    result.Token.Token = state->zero_token ? 0 : token;
    *static_cast<INET_PORT_RESERVATION_INSTANCE*>(out) = result;
    return succeed(s, state->acquire_bytes, bytes, overlapped);
  }

  // cbInBuffer at least sizeof(INET_PORT_RESERVATION_TOKEN), cbOutBuffer 0 (references 001, 003).
  if (in == nullptr) return fail(WSAEFAULT, bytes);
  if (in_size < sizeof(INET_PORT_RESERVATION_TOKEN)) return fail(WSAEINVAL, bytes);
  const auto token = static_cast<const INET_PORT_RESERVATION_TOKEN*>(in)->Token;
  forget_closed_owners();
  const auto it = state->reservations.find(token);

  if (code == SIO_RELEASE_PORT_RESERVATION) {
    if (out_size != 0) return fail(WSAEINVAL, bytes);
    // Reference 003: the runtime reservation must have been obtained on this
    // process' socket; anything else is an unacceptable input (WSAEINVAL).
    if (it == state->reservations.end() || it->second.owner != s) return fail(WSAEINVAL, bytes);
    state->reservations.erase(it);
    return succeed(s, 0, bytes, overlapped);
  }

  // SIO_ASSOCIATE_PORT_RESERVATION (reference 001): an unknown token is an
  // unacceptable input (WSAEINVAL); a persistent token without administrator
  // rights is WSAEACCES.
  if (it == state->reservations.end() || it->second.proto != *proto) return fail(WSAEINVAL, bytes);
  if (it->second.owner == INVALID_SOCKET && !state->administrator) return fail(WSAEACCES, bytes);
  // A family the block does not serve (the assumption above): an unacceptable input.
  const int family = socket_family(s);
  if ((family == AF_INET6 && !it->second.serves_v6) ||
      (family == AF_INET && (!it->second.serves_v4 || state->refuse_ipv4))) {
    return fail(WSAEINVAL, bytes);
  }
  state->associations[s] = token;
  return succeed(s, 0, bytes, overlapped);
}

// SIO_ASSOCIATE_PORT_RESERVATION page: once associated, bind picks its port
// from the reservation and fails when none is left. ASSUMPTIONS (switchable):
// it fails with WSAEADDRINUSE, and leaves the socket unbound and associated.
int WSAAPI sim_bind(SOCKET s, const sockaddr* address, int length) {
  std::lock_guard lock(mutex);
  forget_closed_owners(); // a runtime reservation died with its acquiring socket
  const auto association = state->associations.find(s);
  if (association == state->associations.end()) return ::bind(s, address, length);
  const auto token = association->second;
  const auto reservation = state->reservations.find(token);
  if (reservation == state->reservations.end()) {
    state->associations.erase(association);
    return ::bind(s, address, length);
  }
  // The OS hands out a port of the block that no socket holds, whatever
  // its family (one block, one port space); none left: the bind fails.
  sockaddr_storage local{};
  std::memcpy(&local, address, static_cast<std::size_t>(length));
  auto& handed_out = reservation->second.handed_out;
  std::erase_if(handed_out, [](const auto& entry) { return bound_port(entry.second) != entry.first; });
  const auto range = reservation->second.range;
  for (std::uint32_t port = range.first(); port <= range.last(); ++port) {
    if (handed_out.contains(static_cast<std::uint16_t>(port))) continue;
    if (local.ss_family == AF_INET6) {
      reinterpret_cast<sockaddr_in6&>(local).sin6_port = htons(static_cast<std::uint16_t>(port));
    } else {
      reinterpret_cast<sockaddr_in&>(local).sin_port = htons(static_cast<std::uint16_t>(port));
    }
    if (::bind(s, reinterpret_cast<const sockaddr*>(&local), length) == 0) {
      state->associations.erase(s);
      handed_out[static_cast<std::uint16_t>(port)] = s;
      return 0;
    }
    if (::WSAGetLastError() != WSAEADDRINUSE && ::WSAGetLastError() != WSAEACCES) return SOCKET_ERROR;
  }
  if (!state->failed_bind_keeps_association) state->associations.erase(s);
  ::WSASetLastError(state->exhausted_bind_error);
  return SOCKET_ERROR;
}

// iphlpapi's persistent functions as the CreatePersistentTcpPortReservation
// page describes them: StartPort in network byte order; ERROR_ACCESS_DENIED
// without administrator rights; ERROR_INVALID_PARAMETER for a zero start or
// count or a block past the last port; ERROR_SHARING_VIOLATION when the block
// overlaps another persistent reservation. Lookup and Delete of a block no
// reservation has exactly: ERROR_NOT_FOUND.
ULONG persistent_create(protocol p, USHORT start_wire, USHORT count, PULONG64 token) {
  std::lock_guard lock(mutex);
  const std::uint32_t start = ntohs(start_wire);
  if (!state->administrator) return ERROR_ACCESS_DENIED;
  if (start == 0 || count == 0 || start + count - 1 > 65535) return ERROR_INVALID_PARAMETER;
  const port_range range(static_cast<std::uint16_t>(start), count);
  if (overlaps_existing(p, range)) return ERROR_SHARING_VIOLATION;
  std::uint64_t value = 0;
  while (value == 0 || state->reservations.contains(value)) value = state->rng();
  state->reservations[value] = sim_reservation(p, range, INVALID_SOCKET);
  *token = value;
  return NO_ERROR;
}

std::map<std::uint64_t, sim_reservation>::iterator find_persistent(protocol p, USHORT start_wire, USHORT count) {
  const port_range range(ntohs(start_wire), count);
  return std::find_if(state->reservations.begin(), state->reservations.end(), [&](const auto& entry) {
    return entry.second.owner == INVALID_SOCKET && entry.second.proto == p && entry.second.range == range;
  });
}

ULONG persistent_lookup(protocol p, USHORT start_wire, USHORT count, PULONG64 token) {
  std::lock_guard lock(mutex);
  const auto it = find_persistent(p, start_wire, count);
  if (it == state->reservations.end()) return ERROR_NOT_FOUND;
  *token = it->first;
  return NO_ERROR;
}

ULONG persistent_delete(protocol p, USHORT start_wire, USHORT count) {
  std::lock_guard lock(mutex);
  if (!state->administrator) return ERROR_ACCESS_DENIED;
  const auto it = find_persistent(p, start_wire, count);
  if (it == state->reservations.end()) return ERROR_NOT_FOUND;
  state->reservations.erase(it);
  return NO_ERROR;
}

ULONG WINAPI create_tcp(USHORT s, USHORT n, PULONG64 t) { return persistent_create(protocol::tcp, s, n, t); }
ULONG WINAPI create_udp(USHORT s, USHORT n, PULONG64 t) { return persistent_create(protocol::udp, s, n, t); }
ULONG WINAPI lookup_tcp(USHORT s, USHORT n, PULONG64 t) { return persistent_lookup(protocol::tcp, s, n, t); }
ULONG WINAPI lookup_udp(USHORT s, USHORT n, PULONG64 t) { return persistent_lookup(protocol::udp, s, n, t); }
ULONG WINAPI delete_tcp(USHORT s, USHORT n) { return persistent_delete(protocol::tcp, s, n); }
ULONG WINAPI delete_udp(USHORT s, USHORT n) { return persistent_delete(protocol::udp, s, n); }

template <class Fn>
FARPROC as_proc(Fn fn) {
  return reinterpret_cast<FARPROC>(reinterpret_cast<void*>(fn));
}

FARPROC sim_resolve(const char* name) {
  const std::string_view n(name);
  if (n == "CreatePersistentTcpPortReservation") return as_proc(create_tcp);
  if (n == "CreatePersistentUdpPortReservation") return as_proc(create_udp);
  if (n == "LookupPersistentTcpPortReservation") return as_proc(lookup_tcp);
  if (n == "LookupPersistentUdpPortReservation") return as_proc(lookup_udp);
  if (n == "DeletePersistentTcpPortReservation") return as_proc(delete_tcp);
  if (n == "DeletePersistentUdpPortReservation") return as_proc(delete_udp);
  return nullptr;
}

} // namespace

simulated_provider::simulated_provider(asio::io_context& io) {
  std::lock_guard lock(mutex);
  state = new sim_state;
  state->io = &io;
  auto& seam = portres::detail::win::seam();
  seam.ioctl = sim_ioctl;
  seam.bind = sim_bind;
  seam.resolve = sim_resolve;
}

simulated_provider::~simulated_provider() {
  // Calls still held back end as a closed socket's pending I/O does.
  deliver_pending(ERROR_OPERATION_ABORTED);
  std::lock_guard lock(mutex);
  auto& seam = portres::detail::win::seam();
  seam.ioctl = ::WSAIoctl;
  seam.bind = ::bind;
  seam.resolve = nullptr;
  delete state;
  state = nullptr;
}

void simulated_provider::set_mode(completion_mode mode) {
  std::lock_guard lock(mutex);
  state->mode = mode;
}

std::size_t simulated_provider::deliver_pending(unsigned long win32_error) {
  std::lock_guard lock(mutex);
  auto& service = asio::use_service<asio::detail::win_iocp_io_context>(*state->io);
  for (const auto& call : state->pending) {
    service.on_completion(static_cast<asio::detail::win_iocp_operation*>(call.overlapped), win32_error,
                          win32_error ? 0 : call.bytes);
  }
  const auto count = state->pending.size();
  state->pending.clear();
  return count;
}

std::uintptr_t simulated_provider::last_acquiring_socket() const {
  std::lock_guard lock(mutex);
  return state->last_acquiring;
}

void simulated_provider::add_persistent(protocol p, port_range range, reservation_token token) {
  std::lock_guard lock(mutex);
  state->reservations[token.value()] = sim_reservation(p, range, INVALID_SOCKET);
}

void simulated_provider::set_ipv4_sockets_refused(bool refused) {
  std::lock_guard lock(mutex);
  state->refuse_ipv4 = refused;
}

void simulated_provider::set_exhausted_bind_error(int winsock_code) {
  std::lock_guard lock(mutex);
  state->exhausted_bind_error = winsock_code;
}

void simulated_provider::set_failed_bind_keeps_association(bool keeps) {
  std::lock_guard lock(mutex);
  state->failed_bind_keeps_association = keeps;
}

void simulated_provider::set_acquire_bytes(unsigned long bytes) {
  std::lock_guard lock(mutex);
  state->acquire_bytes = bytes;
}

void simulated_provider::set_overlapped_error(unsigned long win32_error) {
  std::lock_guard lock(mutex);
  state->overlapped_error = win32_error;
}

void simulated_provider::set_zero_token(bool zero) {
  std::lock_guard lock(mutex);
  state->zero_token = zero;
}

std::vector<simulated_provider::ioctl_call> simulated_provider::calls() const {
  std::lock_guard lock(mutex);
  return state->calls;
}

void simulated_provider::socket_closed(std::uintptr_t socket) {
  std::lock_guard lock(mutex);
  state->associations.erase(static_cast<SOCKET>(socket));
}

void simulated_provider::set_administrator(bool admin) {
  std::lock_guard lock(mutex);
  state->administrator = admin;
}

} // namespace portres_test
