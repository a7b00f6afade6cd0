#include "linux/probe_ring.hpp"

#include <gsl/gsl>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include <linux/io_uring.h>
#include <linux/time_types.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace portres::detail::linux_probe {
namespace {

// Newer than the Linux 6.1 headers this may be built with.
constexpr std::uint8_t op_bind = 56;              // IORING_OP_BIND, Linux 6.11
constexpr std::uint32_t socket_op_setsockopt = 3; // SOCKET_URING_OP_SETSOCKOPT, Linux 6.7

constexpr unsigned chunk = 8;        // ports per submission (and fixed-file slots)
constexpr unsigned ops_per_port = 4; // socket, IPV6_V6ONLY off, bind, close
constexpr unsigned entries = chunk * ops_per_port;
const int zero = 0;                  // IPV6_V6ONLY's value: read when the option is set

int ring_setup(unsigned n, io_uring_params* p) { return static_cast<int>(::syscall(SYS_io_uring_setup, n, p)); }
int ring_enter(int fd, unsigned submit, unsigned wait, unsigned flags, void* arg, std::size_t size) {
  return static_cast<int>(::syscall(SYS_io_uring_enter, fd, submit, wait, flags, arg, size));
}
int ring_register(int fd, unsigned op, void* arg, unsigned n) {
  return static_cast<int>(::syscall(SYS_io_uring_register, fd, op, arg, n));
}

class ring {
public:
  ring() = default;
  ring(const ring&) = delete;
  ring& operator=(const ring&) = delete;
  ~ring() {
    if (sqes_ != MAP_FAILED) ::munmap(sqes_, sqes_size_);
    if (rings_ != MAP_FAILED) ::munmap(rings_, rings_size_);
    if (fd_ >= 0) ::close(fd_); // the kernel closes whatever probe socket a slot still has
  }

  static std::unique_ptr<ring> make() {
    io_uring_params params{};
    params.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
    auto r = std::make_unique<ring>();
    r->fd_ = ring_setup(entries, &params);
    if (r->fd_ < 0) return nullptr; // ENOSYS, EPERM (io_uring_disabled, seccomp), EINVAL (old kernel)
    const unsigned needed = IORING_FEAT_SINGLE_MMAP | IORING_FEAT_NODROP | IORING_FEAT_EXT_ARG;
    if ((params.features & needed) != needed || !r->supports_ops()) return nullptr;
    r->rings_size_ = std::max<std::size_t>(params.sq_off.array + params.sq_entries * sizeof(unsigned),
                                           params.cq_off.cqes + params.cq_entries * sizeof(io_uring_cqe));
    r->rings_ = ::mmap(nullptr, r->rings_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd_,
                       IORING_OFF_SQ_RING);
    r->sqes_size_ = params.sq_entries * sizeof(io_uring_sqe);
    r->sqes_ = ::mmap(nullptr, r->sqes_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd_,
                      IORING_OFF_SQES);
    if (r->rings_ == MAP_FAILED || r->sqes_ == MAP_FAILED) return nullptr;
    auto* base = static_cast<char*>(r->rings_);
    r->sq_tail_ = reinterpret_cast<unsigned*>(base + params.sq_off.tail);
    r->sq_mask_ = *reinterpret_cast<unsigned*>(base + params.sq_off.ring_mask);
    r->sq_array_ = reinterpret_cast<unsigned*>(base + params.sq_off.array);
    r->cq_head_ = reinterpret_cast<unsigned*>(base + params.cq_off.head);
    r->cq_tail_ = reinterpret_cast<unsigned*>(base + params.cq_off.tail);
    r->cq_mask_ = *reinterpret_cast<unsigned*>(base + params.cq_off.ring_mask);
    r->cqes_ = reinterpret_cast<io_uring_cqe*>(base + params.cq_off.cqes);
    io_uring_rsrc_register files{};
    files.nr = chunk;
    files.flags = IORING_RSRC_REGISTER_SPARSE;
    if (ring_register(r->fd_, IORING_REGISTER_FILES2, &files, sizeof files) != 0) return nullptr;
    return r;
  }

  /// False: the ring answered something unexpected and must be retired.
  bool probe(protocol p, bool v6, std::span<const std::uint16_t> ports, std::uint32_t& free, std::error_code& ec) {
    Expects(ports.size() <= chunk);
    const unsigned per_port = v6 ? ops_per_port : ops_per_port - 1;
    const auto n = gsl::narrow_cast<unsigned>(ports.size()) * per_port;
    std::array<sockaddr_in6, chunk> a6{};
    std::array<sockaddr_in, chunk> a4{};
    const unsigned tail = *sq_tail_;
    unsigned queued = 0;
    const auto next = [&](std::uint8_t opcode, std::uint64_t tag) -> io_uring_sqe& {
      const unsigned at = (tail + queued++) & sq_mask_;
      sq_array_[at] = at;
      auto& sqe = static_cast<io_uring_sqe*>(sqes_)[at];
      std::memset(&sqe, 0, sizeof sqe);
      sqe.opcode = opcode;
      sqe.user_data = tag;
      return sqe;
    };
    for (unsigned i = 0; i < ports.size(); ++i) {
      auto& open = next(IORING_OP_SOCKET, i * ops_per_port);
      open.fd = v6 ? AF_INET6 : AF_INET;
      open.off = p == protocol::tcp ? SOCK_STREAM : SOCK_DGRAM;
      open.file_index = i + 1; // a direct descriptor: never in the process' table
      open.flags = IOSQE_IO_HARDLINK;
      if (v6) {
        auto& option = next(IORING_OP_URING_CMD, i * ops_per_port + 1);
        option.fd = gsl::narrow_cast<int>(i);
        option.flags = IOSQE_FIXED_FILE | IOSQE_IO_HARDLINK;
        option.cmd_op = socket_op_setsockopt;
        const std::array<std::uint32_t, 2> level_name{IPPROTO_IPV6, IPV6_V6ONLY}; // the {level, optname} over addr
        std::memcpy(&option.addr, level_name.data(), sizeof option.addr);
        option.file_index = sizeof zero; // optlen
        option.addr3 = reinterpret_cast<std::uintptr_t>(&zero); // optval
      }
      auto& bind = next(op_bind, i * ops_per_port + 2);
      bind.fd = gsl::narrow_cast<int>(i);
      bind.flags = IOSQE_FIXED_FILE | IOSQE_IO_HARDLINK; // the close runs whatever the bind said
      if (v6) {
        a6[i].sin6_family = AF_INET6;
        a6[i].sin6_port = htons(ports[i]);
        a6[i].sin6_addr = in6addr_any;
        bind.addr = reinterpret_cast<std::uintptr_t>(&a6[i]);
        bind.addr2 = sizeof a6[i];
      } else {
        a4[i].sin_family = AF_INET;
        a4[i].sin_port = htons(ports[i]);
        a4[i].sin_addr.s_addr = htonl(INADDR_ANY);
        bind.addr = reinterpret_cast<std::uintptr_t>(&a4[i]);
        bind.addr2 = sizeof a4[i];
      }
      next(IORING_OP_CLOSE, i * ops_per_port + 3).file_index = i + 1;
    }
    __atomic_store_n(sq_tail_, tail + n, __ATOMIC_RELEASE);
    // Everything here completes in the kernel at once; the limit only bounds the unexpected.
    __kernel_timespec limit{1, 0};
    io_uring_getevents_arg arg{};
    arg.ts = reinterpret_cast<std::uintptr_t>(&limit);
    if (ring_enter(fd_, n, n, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof arg) != static_cast<int>(n)) {
      return false;
    }
    std::array<int, chunk * ops_per_port> result{};
    unsigned head = *cq_head_;
    const unsigned done = __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE);
    if (done - head != n) return false;
    for (; head != done; ++head) {
      const auto& cqe = cqes_[head & cq_mask_];
      if (cqe.user_data >= result.size()) return false;
      result[cqe.user_data] = cqe.res;
    }
    __atomic_store_n(cq_head_, head, __ATOMIC_RELEASE);
    free = 0;
    for (unsigned i = 0; i < ports.size(); ++i) {
      const int* r = &result[i * ops_per_port];
      const int failed = r[0] < 0 ? r[0] : (v6 && r[1] < 0 ? r[1] : 0);
      if (failed == 0 && r[3] < 0) return false; // a probe socket left open: retire the ring, which closes it
      if (failed != 0 || (r[2] < 0 && r[2] != -EADDRINUSE)) {
        ec = {failed != 0 ? -failed : -r[2], std::system_category()};
        return true;
      }
      if (r[2] == 0) free |= std::uint32_t{1} << i;
    }
    return true;
  }

private:
  bool supports_ops() const {
    constexpr unsigned count = 256;
    std::vector<std::uint64_t> buffer((sizeof(io_uring_probe) + count * sizeof(io_uring_probe_op)) / 8 + 1, 0);
    auto* answer = reinterpret_cast<io_uring_probe*>(buffer.data());
    if (ring_register(fd_, IORING_REGISTER_PROBE, answer, count) != 0) return false;
    for (const unsigned op : {unsigned{IORING_OP_SOCKET}, unsigned{IORING_OP_URING_CMD}, unsigned{op_bind},
                              unsigned{IORING_OP_CLOSE}}) {
      if (op > answer->last_op || !(answer->ops[op].flags & IO_URING_OP_SUPPORTED)) return false;
    }
    return true;
  }

  int fd_ = -1;
  void* rings_ = MAP_FAILED;
  std::size_t rings_size_ = 0;
  void* sqes_ = MAP_FAILED;
  std::size_t sqes_size_ = 0;
  unsigned* sq_tail_ = nullptr;
  unsigned sq_mask_ = 0;
  unsigned* sq_array_ = nullptr;
  unsigned* cq_head_ = nullptr;
  unsigned* cq_tail_ = nullptr;
  unsigned cq_mask_ = 0;
  io_uring_cqe* cqes_ = nullptr;
};

std::mutex ring_mutex;           // guards the two below; held across fork()
std::unique_ptr<ring> the_ring;
bool ring_tried = false;         // made, or found unavailable, in this process
std::atomic<bool> ring_enabled{true};

void fork_prepare() { ring_mutex.lock(); }
void fork_parent() { ring_mutex.unlock(); }
void fork_child() {
  // The parent's ring is shared with it: the child lets go and makes its own.
  the_ring.reset();
  ring_tried = false;
  ring_mutex.unlock();
}

} // namespace

std::uint32_t ring_unheld(protocol p, bool v6, std::span<const std::uint16_t> ports, bool& used,
                          std::error_code& ec) {
  used = false;
  ec.clear();
  if (!ring_enabled.load(std::memory_order_relaxed)) return 0;
  std::lock_guard lock(ring_mutex);
  if (!ring_tried) {
    ring_tried = true;
    static const bool fork_handlers = ::pthread_atfork(fork_prepare, fork_parent, fork_child) == 0;
    if (fork_handlers) the_ring = ring::make();
  }
  if (!the_ring) return 0;
  std::uint32_t free = 0;
  for (std::size_t first = 0; first < ports.size(); first += chunk) {
    const auto part = ports.subspan(first, std::min<std::size_t>(chunk, ports.size() - first));
    std::uint32_t bits = 0;
    if (!the_ring->probe(p, v6, part, bits, ec)) {
      the_ring.reset(); // retired: plain system calls from now on
      used = false;
      ec.clear();
      return 0;
    }
    used = true;
    if (ec) return 0;
    free |= bits << first;
  }
  return free;
}

void set_ring_enabled(bool enabled) noexcept { ring_enabled.store(enabled, std::memory_order_relaxed); }

} // namespace portres::detail::linux_probe
