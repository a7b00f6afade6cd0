#include "portresd/kernel_view.hpp"

#include "linux/state_files.hpp"

namespace portres::portresd {

using detail::port_bitmap;

std::string kernel_view::reclaim() {
  std::string problem;
  owner_.load(&problem);
  std::string said;
  if (!problem.empty()) {
    // Safe direction: whatever a predecessor added stays, as if foreign.
    said = "record of the previous daemon's kernel entries unusable (" + problem + "): none reclaimed";
  }
  if (const auto* current = list(true)) {
    // Recorded and still listed: the next commit removes what nobody wants.
    port_bitmap unlisted = owner_.owned();
    unlisted.remove(*current);
    port_bitmap stale = owner_.owned();
    stale.remove(unlisted);
    if (stale.next_set(0, port_range::max_port)) {
      said += (said.empty() ? "" : "; ") + std::string("reclaiming the kernel entries ") +
              detail::linux_files::format_port_list(stale) + " of a previous portresd";
    }
  }
  touch();
  return said;
}

const port_bitmap* kernel_view::list(bool fresh) {
  const auto now = std::chrono::steady_clock::now();
  if ((fresh && !read_this_turn_) || !copy_ || now - read_at_ > std::chrono::milliseconds(100)) {
    std::error_code ec;
    copy_ = owner_.read_list(ec);
    foreign_.reset();
    read_at_ = now;
    read_this_turn_ = true;
  }
  return copy_ ? &*copy_ : nullptr;
}

const port_bitmap* kernel_view::foreign(bool fresh) {
  const auto* current = list(fresh);
  if (!current) return nullptr;
  if (!foreign_) foreign_ = owner_.foreign(*current);
  return &*foreign_;
}

std::error_code kernel_view::commit(const port_bitmap& wanted, std::string& why, bool force) {
  if (!dirty_ && !force) return {};
  dirty_ = false;
  port_bitmap written;
  const auto ec = owner_.sync(wanted, why, &written);
  foreign_.reset();
  if (ec) {
    copy_.reset(); // unknown now: read afresh
    return ec;
  }
  copy_ = written;
  read_at_ = std::chrono::steady_clock::now();
  return {};
}

} // namespace portres::portresd
