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
# scripts/bench: the peers (nginx, ab, wrk) and the system-call counter.
bench_packages=(nginx-light apache2-utils wrk strace)
windows_packages=(mingw-w64 g++-mingw-w64-x86-64-posix wine wine64)

jobs() { nproc 2>/dev/null || echo 2; }
