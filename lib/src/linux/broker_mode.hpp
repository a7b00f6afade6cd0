// Which Linux registry is in force, chosen once per process: the portresd
// broker when it answers, else the per-user registry; said in words for
// capabilities() and `portres show` (never a silent fallback).
// PORTRES_BROKER: unset (the broker if a genuine one answers, else the
// per-user registry, saying why), "off" (per-user registry), "required"
// (the broker or nothing: acquire fails with linux_error::broker_required), or a
// socket name (that broker or nothing).
#ifndef PORTRES_SRC_LINUX_BROKER_MODE_HPP
#define PORTRES_SRC_LINUX_BROKER_MODE_HPP

#include "core/registry.hpp"
#include "linux/broker_client.hpp"
#include "linux/registry.hpp"

#include <memory>
#include <string>

namespace portres::detail {

struct registry_mode {
  std::shared_ptr<broker_registry> broker; ///< set in broker mode
  std::shared_ptr<linux_registry> files;   ///< set in per-user mode
  std::shared_ptr<registry> refusing;      ///< set when no mode can serve (broker required and absent, no registry folder)
  std::string unavailable;                 ///< why neither can serve
  std::string description;                 ///< the mode and what it means
  std::shared_ptr<registry> active() const;
};

/// The process' mode, from PORTRES_BROKER (decided once).
const registry_mode& linux_registry_mode();
/// The decision itself: `asked` is PORTRES_BROKER's value ("" when unset),
/// `default_name` the broker's socket name when none is given.
registry_mode choose_registry_mode(const std::string& asked, const std::string& default_name);

} // namespace portres::detail

#endif
