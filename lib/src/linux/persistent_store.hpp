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

/// The token of a persistent block for this boot: derived from the kernel's
/// boot id, so it changes at every reboot as on Windows.
reservation_token token_of(const entry& e);

} // namespace portres::detail::linux_store

#endif
