#include "portresd/store_view.hpp"

#include <sys/stat.h>

namespace portres::portresd {
namespace {

std::optional<std::int64_t> store_mtime() {
  struct stat st {};
  if (::stat((detail::linux_store::directory() + "/persistent").c_str(), &st) != 0) return std::nullopt;
  return std::int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
}

} // namespace

bool store_view::load(std::string& problem) {
  stamp_ = store_mtime();
  checked_ = std::chrono::steady_clock::now();
  std::error_code ec;
  auto entries = detail::linux_store::load(ec);
  damaged_ = static_cast<bool>(ec);
  ++version_;
  if (ec) {
    problem = ec.message();
    return false;
  }
  set(std::move(entries));
  return true;
}

void store_view::refresh(bool now) {
  const auto t = std::chrono::steady_clock::now();
  if (!now && t - checked_ < std::chrono::milliseconds(100)) return;
  checked_ = t;
  if (store_mtime() == stamp_ && !damaged_) return;
  std::string ignored; // damaged() reports it
  load(ignored);
}

void store_view::set(std::vector<detail::linux_store::entry> entries) {
  entries_ = std::move(entries);
  ports_[0] = ports_[1] = detail::port_bitmap{};
  for (const auto& e : entries_) ports_[e.proto == protocol::tcp ? 0 : 1].set_range(e.range.first(), e.range.last());
  stamp_ = store_mtime();
  damaged_ = false;
  ++version_;
}

detail::port_bitmap store_view::all_ports() const {
  auto all = ports_[0];
  all |= ports_[1];
  return all;
}

} // namespace portres::portresd
