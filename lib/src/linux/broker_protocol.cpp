#include "linux/broker_protocol.hpp"

#include "portres/error.hpp"
#include "portres/linux_error.hpp"

#include <cstring>

#include <gsl/gsl>

namespace portres::detail::broker_wire {
namespace {

// How an error_code travels: which category, then its value.
enum class error_kind : std::uint8_t { none = 0, portres = 1, system = 2, port_in_use = 3, exhausted = 4, linux_specific = 5 };

class writer {
public:
  explicit writer(std::vector<std::uint8_t>& out) : out_(out) {}
  template <class T>
  void put(T v) {
    for (std::size_t i = 0; i < sizeof(T); ++i) out_.push_back(static_cast<std::uint8_t>(static_cast<std::uint64_t>(v) >> (8 * i)));
  }

private:
  std::vector<std::uint8_t>& out_;
};

class reader {
public:
  explicit reader(std::span<const std::uint8_t> in) : in_(in) {}
  template <class T>
  T get() {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) v |= std::uint64_t{in_[pos_ + i]} << (8 * i);
    pos_ += sizeof(T);
    return static_cast<T>(v);
  }

private:
  std::span<const std::uint8_t> in_;
  std::size_t pos_ = 0;
};

bool valid_op(std::uint8_t v) { return v >= 1 && v <= 9; }
std::optional<protocol> to_protocol(std::uint8_t v) {
  if (v == 0) return protocol::tcp;
  if (v == 1) return protocol::udp;
  return std::nullopt;
}
std::uint8_t from_protocol(protocol p) { return p == protocol::tcp ? 0 : 1; }

std::pair<error_kind, std::int32_t> split(const std::error_code& ec) {
  if (!ec) return {error_kind::none, 0};
  if (ec.category() == error_category()) return {error_kind::portres, ec.value()};
  if (ec.category() == linux_error_category()) return {error_kind::linux_specific, ec.value()};
  if (ec.category() == port_in_use_error(1).category()) return {error_kind::port_in_use, ec.value()};
  if (ec.category() == block_exhausted_error(1, 1).category()) return {error_kind::exhausted, ec.value()};
  if (ec.category() == std::system_category() || ec.category() == std::generic_category()) {
    return {error_kind::system, ec.value()};
  }
  // Anything else is reported by its portable meaning only.
  return {error_kind::portres, static_cast<int>(error::backend_unavailable)};
}

std::optional<std::error_code> join(std::uint8_t kind, std::int32_t value) {
  switch (static_cast<error_kind>(kind)) {
  case error_kind::none:
    return value == 0 ? std::optional(std::error_code()) : std::nullopt;
  case error_kind::portres:
    if (value <= 0 || value > 255) return std::nullopt;
    return std::error_code(value, error_category());
  case error_kind::linux_specific:
    if (value <= 0 || value > 255) return std::nullopt;
    return std::error_code(value, linux_error_category());
  case error_kind::system:
    if (value <= 0 || value > 4095) return std::nullopt;
    return std::error_code(value, std::system_category());
  case error_kind::port_in_use:
    if (value <= 0 || value > 65535) return std::nullopt;
    return port_in_use_error(static_cast<unsigned>(value));
  case error_kind::exhausted: {
    const auto u = static_cast<std::uint32_t>(value);
    if ((u & 0xffffu) == 0) return std::nullopt; // a block of no ports
    return block_exhausted_error(u >> 16, u & 0xffffu);
  }
  }
  return std::nullopt;
}

} // namespace

std::optional<socket_address> abstract_address(const std::string& name) {
  socket_address a;
  a.addr.sun_family = AF_UNIX;
  if (name.empty() || name.size() + 1 > sizeof a.addr.sun_path) return std::nullopt;
  std::memcpy(a.addr.sun_path + 1, name.data(), name.size()); // abstract: leading NUL
  a.length = gsl::narrow<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  return a;
}

std::optional<socket_address> path_address(const std::string& path) {
  socket_address a;
  a.addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() + 1 > sizeof a.addr.sun_path) return std::nullopt;
  std::memcpy(a.addr.sun_path, path.data(), path.size());
  a.length = gsl::narrow<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return a;
}

std::vector<std::uint8_t> encode(const request& r) {
  std::vector<std::uint8_t> out;
  out.reserve(request_size);
  writer w(out);
  w.put(magic);
  w.put(static_cast<std::uint8_t>(r.kind));
  w.put(from_protocol(r.proto));
  w.put(r.first);
  w.put(r.count);
  w.put(r.token);
  w.put(r.flags);
  return out;
}

std::optional<request> parse_request(std::span<const std::uint8_t> bytes) {
  if (bytes.size() != request_size) return std::nullopt;
  reader in(bytes);
  if (in.get<std::uint32_t>() != magic) return std::nullopt;
  const auto kind = in.get<std::uint8_t>();
  const auto proto = to_protocol(in.get<std::uint8_t>());
  if (!valid_op(kind) || !proto) return std::nullopt;
  request r;
  r.kind = static_cast<op>(kind);
  r.proto = *proto;
  r.first = in.get<std::uint16_t>();
  r.count = in.get<std::uint32_t>();
  r.token = in.get<std::uint64_t>();
  r.flags = in.get<std::uint32_t>();
  if ((r.flags & ~flag_force) != 0) return std::nullopt; // unknown flags
  return r;
}

std::vector<std::uint8_t> encode(const reply& r) {
  Expects(r.entries.size() <= max_entries_per_reply);
  std::vector<std::uint8_t> out;
  out.reserve(reply_header_size + listed_size * r.entries.size());
  writer w(out);
  const auto [kind, value] = split(r.result);
  w.put(magic);
  w.put(static_cast<std::uint8_t>(r.kind));
  w.put(static_cast<std::uint8_t>(kind));
  w.put(r.first);
  w.put(value);
  w.put(r.count);
  w.put(r.token);
  w.put(r.flags);
  w.put(gsl::narrow<std::uint32_t>(r.entries.size()));
  for (const auto& e : r.entries) {
    w.put(from_protocol(e.proto));
    w.put(std::uint8_t{0});
    w.put(e.first);
    w.put(e.count);
    w.put(e.uid);
    w.put(e.pid);
    w.put(e.token);
  }
  return out;
}

std::optional<reply> parse_reply(std::span<const std::uint8_t> bytes) {
  if (bytes.size() < reply_header_size) return std::nullopt;
  reader in(bytes);
  if (in.get<std::uint32_t>() != magic) return std::nullopt;
  const auto kind = in.get<std::uint8_t>();
  const auto error_kind_value = in.get<std::uint8_t>();
  reply r;
  r.first = in.get<std::uint16_t>();
  const auto value = in.get<std::int32_t>();
  r.count = in.get<std::uint32_t>();
  r.token = in.get<std::uint64_t>();
  r.flags = in.get<std::uint32_t>();
  const auto n = in.get<std::uint32_t>();
  const auto result = join(error_kind_value, value);
  if (!valid_op(kind) || !result || n > max_entries_per_reply) return std::nullopt;
  if (bytes.size() != reply_header_size + listed_size * std::size_t{n}) return std::nullopt;
  r.kind = static_cast<op>(kind);
  r.result = *result;
  r.entries.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    listed e;
    const auto proto = to_protocol(in.get<std::uint8_t>());
    const auto pad = in.get<std::uint8_t>();
    if (!proto || pad != 0) return std::nullopt;
    e.proto = *proto;
    e.first = in.get<std::uint16_t>();
    e.count = in.get<std::uint32_t>();
    e.uid = in.get<std::uint32_t>();
    e.pid = in.get<std::uint32_t>();
    e.token = in.get<std::uint64_t>();
    r.entries.push_back(e);
  }
  return r;
}

} // namespace portres::detail::broker_wire
