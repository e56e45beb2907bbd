# Set-up shared by scripts/dev, scripts/test and .ci/run (sourced, not run): what a fresh
# Debian machine lacks is installed with apt-get when running as root; otherwise the one
# command to run is printed and the script stops.

# ensure_commands CMD:PACKAGE…: installs the package of every missing command.
ensure_commands() {
  local need=()
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
  done
  [ ${#need[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
  else
    echo "setup: missing ${need[*]}; run: sudo apt-get install -y ${need[*]}" >&2
    return 1
  fi
}

# The build needs a Rust toolchain, and pingora's zlib-ng needs cmake and pkg-config.
ensure_build_tools() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: no cargo; install Rust from https://rustup.rs, then run this again" >&2
    return 1
  fi
  ensure_commands cmake:cmake pkg-config:pkg-config cc:build-essential
}

# PostgreSQL for the tests (DATABASE_URL, default 127.0.0.1:5432): the local cluster is
# started when it is down; unreachable afterwards is a loud failure.
ensure_postgres() {
  ensure_commands pg_isready:postgresql-client
  if [ -n "${DATABASE_URL:-}" ]; then
    pg_isready -d "$DATABASE_URL" -q && return 0
    echo "setup: PostgreSQL at DATABASE_URL is not reachable" >&2
    return 1
  fi
  pg_isready -h 127.0.0.1 -p 5432 -q && return 0
  local version
  version="$(ls /etc/postgresql 2>/dev/null | head -n1)"
  if [ -z "$version" ]; then
    echo "setup: no PostgreSQL server on 127.0.0.1:5432 and no local cluster; run:" >&2
    echo "  sudo apt-get install -y postgresql, allow user postgres from 127.0.0.1 with" >&2
    echo "  trust in pg_hba.conf, or set DATABASE_URL to a server you have" >&2
    return 1
  fi
  echo "setup: starting PostgreSQL $version" >&2
  if [ "$(id -u)" -eq 0 ]; then
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  else
    echo "setup: run: sudo pg_ctlcluster --skip-systemctl-redirect $version main start" >&2
    return 1
  fi
  for _ in $(seq 1 60); do
    pg_isready -h 127.0.0.1 -p 5432 -q && return 0
    sleep 0.5
  done
  echo "setup: PostgreSQL is not reachable on 127.0.0.1:5432" >&2
  return 1
}
