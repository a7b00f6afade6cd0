// Choosing where a block goes: pure functions over the occupied blocks and
// the ports the OS reports as held. Shared by every portable registry.
#ifndef PORTRES_SRC_CORE_BLOCK_PLACEMENT_HPP
#define PORTRES_SRC_CORE_BLOCK_PLACEMENT_HPP

#include "platform.hpp"
#include "portres/types.hpp"

#include <optional>
#include <system_error>
#include <vector>

namespace portres::detail {

/// The IANA dynamic range, where wildcard blocks go by default.
inline constexpr port_range iana_dynamic{49152, 16384};

/// The regions a wildcard block is tried in, in order: the placement range
/// minus the OS ephemeral range (no automatic allocation there, nobody
/// starved), then the whole placement range.
std::vector<port_range> wildcard_regions(port_range placement, port_range ephemeral);

/// The lowest block of `count` ports inside `region` that overlaps no
/// `occupied` block and no `held` port.
std::optional<port_range> find_free_block(std::uint32_t count, port_range region,
                                          const std::vector<port_range>& occupied,
                                          const port_bitmap& held);

/// Whether a specific block can be granted: error::overlaps_reservation or
/// port_in_use_error(port) naming the first conflicting port.
std::error_code check_specific_block(port_range block, const std::vector<port_range>& occupied,
                                     const port_bitmap& held);

/// Places `request` (wildcard or specific): the granted block, or
/// error::block_unavailable / the specific block's conflict.
port_range place_block(port_range request, port_range placement, port_range ephemeral,
                       const std::vector<port_range>& occupied, const port_bitmap& held,
                       std::error_code& ec);

/// Held ports of the whole port space for wildcard placement: a kernel
/// snapshot at most 250 ms old, since taking one costs milliseconds. A port
/// bound since is skipped later, at bind. Specific blocks always ask afresh.
port_bitmap recent_held_ports(protocol p, std::error_code& ec);

/// The held ports that placing `request` must respect.
port_bitmap held_ports_for(protocol p, port_range request, std::error_code& ec);

/// Where wildcard blocks go: PORTRES_PLACEMENT ("first-last") or the IANA range.
port_range default_placement();

/// Parses "first-last" (e.g. "49152-65535"); nullopt when malformed.
std::optional<port_range> parse_port_span(const char* text);

} // namespace portres::detail

#endif
