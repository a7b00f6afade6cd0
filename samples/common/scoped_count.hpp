// A count that follows a scope: live connections, coroutines not yet
// returned, attempts in flight (single-threaded: one io_context's thread).
#ifndef PORTRES_SAMPLES_SCOPED_COUNT_HPP
#define PORTRES_SAMPLES_SCOPED_COUNT_HPP

#include <cstddef>

namespace samples {

/// Adds one to `n` for as long as it is in scope.
class scoped_count {
public:
  explicit scoped_count(std::size_t& n) : n_(n) { ++n_; }
  scoped_count(const scoped_count&) = delete;
  scoped_count& operator=(const scoped_count&) = delete;
  ~scoped_count() { --n_; }

private:
  std::size_t& n_;
};

} // namespace samples

#endif
