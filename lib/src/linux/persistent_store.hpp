// The Linux persistent-reservation store: one text file of blocks
// ("tcp 50000 20" per line) in PORTRES_STATE_DIR (default /var/lib/portres).
#ifndef PORTRES_SRC_LINUX_PERSISTENT_STORE_HPP
#define PORTRES_SRC_LINUX_PERSISTENT_STORE_HPP

#include "portres/types.hpp"

#include <functional>
#include <string>
#include <system_error>
#include <vector>

namespace portres::detail::linux_store {

struct entry {
  protocol proto;
  port_range range;
  friend bool operator==(const entry&, const entry&) = default;
};

/// The store folder.
std::string directory();

/// Parses store text; error::malformed_state names a bad file (no partial result).
std::vector<entry> parse(const std::string& text, std::error_code& ec);
std::string format(const std::vector<entry>& entries);

/// Reads the store (empty when there is none yet).
std::vector<entry> load(std::error_code& ec);
/// Replaces the store atomically. The caller holds the store lock.
std::error_code save(const std::vector<entry>& entries);

/// Read-modify-write of the store under its own lock (a file in the store
/// folder, so every writer of that folder is serialised whatever registry or
/// daemon it runs under), through one descriptor of the folder. `change`
/// edits the entries or returns an error (nothing is written then). A store
/// that does not parse is never written over: error::malformed_state.
std::error_code update(const std::function<std::error_code(std::vector<entry>&)>& change);

/// Adds `e` to the store (through update) unless it overlaps a stored block
/// or one of `live` (the runtime blocks of its protocol), a port of it is
/// bound, or `admit` refuses it, given the stored entries (the ephemeral
/// share: one check for the registry and portresd). The store after the
/// change; `ec` (and the store unchanged) otherwise.
std::vector<entry> add(const entry& e, const std::vector<port_range>& live,
                       const std::function<std::error_code(const std::vector<entry>&)>& admit, std::error_code& ec);
/// Removes `e` (error::unknown_token when it is not stored); the store after.
std::vector<entry> remove(const entry& e, std::error_code& ec);

/// The token of a persistent block for this boot: derived from the kernel's
/// boot id, so it changes at every reboot as on Windows.
reservation_token token_of(const entry& e);

} // namespace portres::detail::linux_store

#endif
