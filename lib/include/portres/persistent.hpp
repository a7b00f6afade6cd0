// Persistent port reservations: machine-wide blocks that survive the
// reserving process (Windows: iphlpapi's Create/Lookup/DeletePersistent*;
// Linux: portres' persistent store re-applied at boot).
//
// Persistent blocks are always specific: a wildcard range is
// error::wildcard_not_allowed (condition::invalid_argument). Tokens may
// change at every boot: look them up again instead of storing them.
#ifndef PORTRES_PERSISTENT_HPP
#define PORTRES_PERSISTENT_HPP

#include "portres/types.hpp"

#include <system_error>
#include <vector>

namespace portres::persistent {

/// Creates a persistent reservation and returns its token.
/// Errors: condition::access_denied without administrator/root rights,
/// condition::in_use when a port of the block is in use or the block
/// overlaps another persistent reservation, condition::not_supported where
/// the platform lacks persistent reservations.
reservation_token create(protocol p, port_range range);
reservation_token create(protocol p, port_range range, std::error_code& ec);

/// The token of the persistent reservation with exactly this block.
/// Errors: error::unknown_token when there is none.
reservation_token lookup(protocol p, port_range range);
reservation_token lookup(protocol p, port_range range, std::error_code& ec);

/// Deletes the persistent reservation with exactly this block.
void remove(protocol p, port_range range);
void remove(protocol p, port_range range, std::error_code& ec);

/// All persistent reservations of a protocol (Windows has no such API:
/// there it fails with condition::not_supported).
std::vector<reservation> list(protocol p);
std::vector<reservation> list(protocol p, std::error_code& ec);

/// Re-applies the persistent blocks to the OS (Linux: ip_local_reserved_ports,
/// for a boot script). A no-op where the OS keeps them itself.
void apply();
void apply(std::error_code& ec);

} // namespace portres::persistent

#endif
