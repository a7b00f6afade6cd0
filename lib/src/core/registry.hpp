// Where runtime blocks are granted: the seam between the portable backend
// and what coordinates reservations (this process only, or every process of
// the machine on Linux).
#ifndef PORTRES_SRC_CORE_REGISTRY_HPP
#define PORTRES_SRC_CORE_REGISTRY_HPP

#include "backend.hpp"
#include "portres/types.hpp"

#include <memory>
#include <optional>
#include <system_error>

namespace portres::detail {

class registry {
public:
  /// Keeps a granted block alive; destroying it releases the block (best effort).
  class lease {
  public:
    virtual ~lease() = default;
    /// An error comparing equal to condition::aborted (Linux:
    /// linux_error::reservation_lost) once the grant ended without a release (the
    /// broker went away); checked before each association and bind.
    virtual std::error_code lost() { return {}; }
  };

  virtual ~registry() = default;

  /// Grants `request` (validated; wildcard or specific) under `token`.
  virtual std::unique_ptr<lease> grant(protocol p, port_range request, reservation_token token, blocking b,
                                       port_range& granted, std::error_code& ec) = 0;
  /// Releases a grant now, reporting errors; the lease is then inert.
  virtual void release(lease& l, blocking b, std::error_code& ec) = 0;

  /// For a token that is not a live runtime token of this process:
  /// error::foreign_token when another process holds it, else error::unknown_token.
  virtual std::error_code classify_unknown(reservation_token token, blocking b) = 0;

  /// The block of a persistent reservation with this token, if it is one;
  /// condition::access_denied when the caller may not use it.
  virtual std::optional<port_range> persistent_block(protocol p, reservation_token token, blocking b,
                                                     std::error_code& ec) = 0;

  /// Whether the caller may use persistent blocks now (checked at every
  /// association, also for blocks this process looked up before).
  virtual std::error_code persistent_access() const = 0;
};

/// Coordinates within this process only (the fallback backend).
std::shared_ptr<registry> make_local_registry();

} // namespace portres::detail

#endif
