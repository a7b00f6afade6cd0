// The portable backend: blocks come from a registry, ports are picked from
// the block by policy and bound explicitly. The Linux backend is this class
// with the cross-process registry; the fallback backend (every OS) is this
// class with the in-process registry.
#ifndef PORTRES_SRC_CORE_PORTABLE_BACKEND_HPP
#define PORTRES_SRC_CORE_PORTABLE_BACKEND_HPP

#include "backend.hpp"
#include "core/destination_ports.hpp"
#include "core/port_block.hpp"
#include "core/port_reclaim.hpp"
#include "core/registry.hpp"
#include "platform.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <unordered_map>

namespace portres::detail {

class portable_backend final : public backend {
public:
  portable_backend(backend_kind kind, std::shared_ptr<registry> reg);

  backend_kind kind() const noexcept override { return kind_; }
  state_ptr acquire(const asio::any_io_executor& ex, protocol p, port_range r, blocking b,
                    std::error_code& ec) override;
  void release(owned_state& s, blocking b, std::error_code& ec) override;
  void set_port_policy(owned_state& s, port_policy policy, std::error_code& ec) override;
  void associate(native_socket s, reservation_token t, blocking b, std::error_code& ec) override;
  void associate_as(native_socket s, protocol p, reservation_token t, blocking b, std::error_code& ec) override;
  std::uint16_t bind(native_socket s, const asio::ip::address* local, std::error_code& ec) override;
  std::uint16_t bind_fresh(native_socket s, protocol p, reservation_token t, const asio::ip::address& local,
                           blocking b, std::error_code& ec) override;
  void port_returned(reservation_token t, std::uint16_t port, const destination* towards,
                     std::chrono::steady_clock::time_point ready_at) override;

  // Port sharing (TCP).
  bool shares_ports(protocol p) const noexcept override {
    return p == protocol::tcp && platform::shares_ports_safely();
  }
  std::uint16_t bind_towards(native_socket s, std::span<const asio::ip::address> sources,
                             const asio::ip::address& peer, std::uint16_t peer_port, std::error_code& ec) override;
  std::uint16_t bind_fresh_towards(native_socket s, reservation_token t, std::span<const asio::ip::address> sources,
                                   const asio::ip::address& peer, std::uint16_t peer_port, blocking b,
                                   asio::ip::address& source, std::error_code& ec) override;
  void share_port(reservation_token t, std::uint16_t port, const destination& d) override;
  void port_released(reservation_token t, std::uint16_t port, const destination* towards, native_socket s) override;
  destination_headroom headroom(reservation_token t, std::span<const asio::ip::address> sources,
                                const asio::ip::address& peer, std::uint16_t peer_port) override;
  std::size_t free_ports(reservation_token t) override;
  std::error_code status(owned_state& s) override;

private:
  class block_state;
  using block_ptr = std::shared_ptr<block_state>;

  reservation_token new_token();
  block_ptr find_block(protocol p, reservation_token t, blocking b, std::error_code& ec);
  std::uint16_t bind_from(block_state& block, native_socket s, const asio::ip::address& address, bool owned,
                          std::error_code& ec);
  void associate_inspected(native_socket s, const platform::socket_info& info, reservation_token t, blocking b,
                           std::error_code& ec);
  std::error_code explain_bind_failure(native_socket s, std::error_code ec);
  std::uint16_t bound(native_socket s, std::uint64_t key, std::uint16_t port, std::error_code& ec);
  block_ptr live_block(reservation_token t);
  block_ptr associated_block(native_socket s, std::uint64_t& key, bool& ipv6, std::error_code& ec);
  std::uint16_t bind_shared(block_state& block, native_socket s, std::span<const asio::ip::address> sources,
                            const asio::ip::address& peer, std::uint16_t peer_port,
                            const destination_ports::tracked_socket* tracked,
                            asio::ip::address& source, std::error_code& ec);

  backend_kind kind_;
  std::shared_ptr<registry> registry_;
  std::mutex mutex_;
  std::unordered_map<reservation_token, std::weak_ptr<block_state>> runtime_;    // live, this process
  std::size_t runtime_sweep_at_ = 64; // runtime_'s size at which dead entries are dropped next
  std::unordered_map<reservation_token, block_ptr> persistent_;                  // used by this process
  struct association {
    std::weak_ptr<block_state> block;
    bool ipv6;
  };
  std::unordered_map<std::uint64_t, association> associations_; // socket key -> block
};

/// Explicit bind attempts the portable backends have made in this process
/// (tests check that a nearly full block costs a bounded number).
std::uint64_t bind_attempts() noexcept;
/// Held-ports queries (a walk of the kernel's socket tables) and port probes
/// (one bind each) the portable backends have made to find ports that came back.
std::uint64_t held_port_queries() noexcept;
std::uint64_t port_probes() noexcept;

} // namespace portres::detail

#endif
