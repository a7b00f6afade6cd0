// The in-process registry: blocks are placed by the portable rules and
// coordinated between the reservations of this process only.
#include "core/block_placement.hpp"
#include "core/registry.hpp"
#include "platform.hpp"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <vector>

namespace portres::detail {
namespace {

class local_registry final : public registry {
  struct entry {
    protocol proto;
    port_range range;
    reservation_token token;
  };

  class local_lease final : public lease {
  public:
    local_lease(local_registry& owner, reservation_token token) : owner_(&owner), token_(token) {}
    ~local_lease() override {
      if (owner_) owner_->forget(token_);
    }
    void release() {
      if (owner_) owner_->forget(token_);
      owner_ = nullptr;
    }

  private:
    local_registry* owner_;
    reservation_token token_;
  };

public:
  local_registry() : placement_(default_placement()) {}

  std::unique_ptr<lease> grant(protocol p, port_range request, reservation_token token, blocking,
                               port_range& granted, std::error_code& ec) override {
    const auto held = held_ports_for(p, request, ec);
    if (ec) return nullptr;
    std::lock_guard lock(mutex_);
    std::vector<port_range> occupied;
    for (const auto& e : live_) {
      if (e.proto == p) occupied.push_back(e.range);
    }
    granted = place_block(request, placement_, platform::ephemeral_range(), occupied, held, ec);
    if (ec) return nullptr;
    live_.push_back({p, granted, token});
    return std::make_unique<local_lease>(*this, token);
  }

  void release(lease& l, blocking, std::error_code& ec) override {
    ec.clear();
    static_cast<local_lease&>(l).release();
  }

  std::error_code classify_unknown(reservation_token, blocking) override { return error::unknown_token; }

  std::optional<port_range> persistent_block(protocol, reservation_token, blocking, std::error_code& ec) override {
    ec.clear();
    return std::nullopt;
  }

  std::error_code persistent_access() const override { return {}; }

private:
  void forget(reservation_token token) {
    std::lock_guard lock(mutex_);
    std::erase_if(live_, [&](const entry& e) { return e.token == token; });
  }

  std::mutex mutex_;
  std::vector<entry> live_;
  port_range placement_;
};

} // namespace

std::shared_ptr<registry> make_local_registry() { return std::make_shared<local_registry>(); }

} // namespace portres::detail
