// Which Linux registry is in force, chosen once per process: the portresd
// broker when it answers, else the per-user registry; said in words for
// capabilities() and `portres show` (never a silent fallback).
// PORTRES_BROKER: the broker's abstract socket name, or "off".
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
  std::string unavailable;                 ///< why neither can serve
  std::string description;                 ///< the mode and what it means
  std::shared_ptr<registry> active() const;
};

const registry_mode& linux_registry_mode();

} // namespace portres::detail

#endif
