// One event loop of loadgen: an io_context run by one thread, its share of
// the connections, its socket pool over the block all lanes share, and what
// it counted (read by the main thread for the progress line and the summary).
#ifndef PORTRES_SAMPLES_LOADGEN_LANE_HPP
#define PORTRES_SAMPLES_LOADGEN_LANE_HPP

#include "common/histogram.hpp"
#include "common/tally.hpp"
#include "loadgen/settings.hpp"

#include <portres/portres.hpp>

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

namespace loadgen {

using clock_type = std::chrono::steady_clock;

struct target_counts {
  std::uint64_t connections = 0, errors = 0, held = 0;
};

/// What one lane counted, or all of them merged.
struct counts {
  std::uint64_t connections = 0; ///< churn: completed; hold: opened
  std::uint64_t bytes = 0;       ///< received
  std::uint64_t held = 0;        ///< hold: open now
  std::uint64_t dropped = 0;     ///< hold: closed by the peer or the network before the end
  std::uint64_t in_flight_at_end = 0; ///< connections under way when the run ended: cut off, neither done nor errors
  samples::error_tally errors;   ///< failed connections (connect, request, reply) by kind: errno name or http_*
  samples::error_tally drops;    ///< hold: how held connections ended early
  samples::histogram connect_us; ///< start of a connection until connected
  samples::histogram request_us; ///< --http: start until the final status line was judged (--close client,
                                 ///< rst) or the server closed after the whole reply (--close server)
  std::vector<target_counts> targets;
  clock_type::time_point last_open{}; ///< hold: when the last connection opened

  void merge(const counts& other);
};

/// The one schedule every lane takes connection slots from under --rate.
class schedule {
public:
  schedule(clock_type::time_point begin, double rate)
      : begin_(begin), interval_ns_(rate > 0 ? static_cast<std::int64_t>(1e9 / rate) : 0) {}
  bool paced() const noexcept { return interval_ns_ > 0; }
  /// When the next connection may start.
  clock_type::time_point next() noexcept {
    return begin_ + std::chrono::nanoseconds(next_.fetch_add(interval_ns_, std::memory_order_relaxed));
  }

private:
  clock_type::time_point begin_;
  std::int64_t interval_ns_;
  std::atomic<std::int64_t> next_{0};
};

class lane {
public:
  /// `workers`: connections in flight at once in this lane; hold: `first`
  /// and `share` say which of the --hold connections are this lane's.
  lane(const settings& s, std::size_t index, std::size_t workers, std::size_t first, std::size_t share,
       const portres::runtime_reservation* block, schedule& pace, clock_type::time_point end);
  lane(const lane&) = delete;
  lane& operator=(const lane&) = delete;
  ~lane();

  /// Runs the lane's loop (on the calling thread) until the end of the run,
  /// then cancels what is still in flight and closes what it holds, returning
  /// at most a quarter second after the end.
  void run();
  /// Ends the run now (from any thread), as if its time were up.
  void finish();
  /// Everything counted so far.
  counts total() const;
  /// What was counted since the last call (connections, connect latencies),
  /// with the errors and the held count so far.
  counts take_interval();

private:
  struct connection;
  asio::awaitable<void> churn_worker();
  asio::awaitable<void> opener();
  asio::awaitable<void> keep(std::shared_ptr<connection> c, std::size_t target);
  asio::awaitable<std::error_code> open(connection& c, std::size_t target, std::size_t source);
  asio::awaitable<bool> wait_for_slot(asio::steady_timer& timer);
  void stop();
  template <class F> void record(F&& f);
  void count_failure(std::size_t target, const std::error_code& ec);
  void count_failure(std::size_t target, const std::string& kind);

  const settings& s_;
  std::size_t index_, workers_, first_, share_;
  schedule& pace_;
  clock_type::time_point end_, deadline_;
  // Declared before io_, so they outlive it: coroutines still pending after the drain are
  // destroyed with io_, and their scope guards then decrement live_ and in_flight_.
  std::set<tcp::socket*> open_; // sockets with operations in flight: cancelled at the end
  bool stopping_ = false;
  std::size_t next_ = 0;        // churn: connections started; hold: openings started
#if defined(__SANITIZE_ADDRESS__)
  // ASan builds: the two counts below are poisoned when this member goes (after them, after io_),
  // so a frame destroyed with io_ that decrements them is reported (samples_test's bounded end
  // leaves such frames). Unpoisoned first, in case this memory held a lane before without a free.
  struct poison_when_destroyed {
    std::size_t *a, *b;
    poison_when_destroyed(std::size_t* first, std::size_t* second) : a(first), b(second) {
      ASAN_UNPOISON_MEMORY_REGION(a, sizeof *a);
      ASAN_UNPOISON_MEMORY_REGION(b, sizeof *b);
    }
    ~poison_when_destroyed() {
      ASAN_POISON_MEMORY_REGION(a, sizeof *a);
      ASAN_POISON_MEMORY_REGION(b, sizeof *b);
    }
  } poison_{&live_, &in_flight_};
#endif
  std::size_t live_ = 0;        // coroutines not yet returned: the end waits for them (bounded)
  std::size_t in_flight_ = 0;   // connections under way (churn) or being opened (hold)
  mutable std::mutex mutex_;    // guards total_ and interval_
  counts total_, interval_;
  asio::io_context io_;
  asio::steady_timer at_end_{io_};
  std::unique_ptr<portres::socket_pool<tcp>> pool_;
};

} // namespace loadgen

#endif
