# Shared helpers for scripts/test and scripts/bench (sourced, not run).

# install_missing PKG...: apt-get installs the packages that are not installed yet;
# 'apt-get update' runs only when something is missing.
install_missing() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "== installing: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

native_packages=(cmake g++ make libasio-dev libmsgsl-dev doctest-dev libbenchmark-dev
  libbenchmark-tools iproute2 util-linux python3 python3-yaml pkgconf ccache gnuplot-nox)
# scripts/bench: the peers (nginx, ab, wrk, httperf, HAProxy) and the system-call counter.
bench_packages=(nginx-light apache2-utils wrk httperf haproxy strace)
windows_packages=(mingw-w64 g++-mingw-w64-x86-64-posix wine wine64)

jobs() { nproc 2>/dev/null || echo 2; }

# bench_build DIR BUILD_TYPE [cmake args...]: the programs scripts/bench runs, built
# as it builds them: CMake's unity build (one translation unit per batch of 8
# sources: Asio's templates are compiled once per batch, not once per file, which
# halves a cold build on 2 cores). scripts/test builds them so too, in Debug, so a
# name two sources of one target both define fails there and not in the report.
# One target, bench_programs (the top CMakeLists.txt): portres_bench, loadgen, gateway and
# portresd built side by side (make takes several targets one after another).
bench_build() {
  local dir=$1 type=$2; shift 2
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DCMAKE_UNITY_BUILD=ON -DPORTRES_BUILD_TESTS=OFF \
    -DPORTRES_BUILD_SAMPLES=ON "$@" >/dev/null &&
    cmake --build "$dir" -j"$(jobs)" --target bench_programs
}
