# Shared shell helpers for scripts/*.sh (sourced, not run).

log() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# Installs the Debian packages that are missing (and only those).
ensure_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
}

# build_tree DIR [cmake args...]: configures DIR once (re-configures only if the arguments changed)
# and builds it with ninja.
build_tree() {
  local dir=$1
  shift
  local stamp="$dir/.ctxpool-configure-args"
  if [ ! -f "$dir/build.ninja" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$*" ]; then
    log "configuring $dir"
    cmake -S . -B "$dir" -G Ninja "$@"
    echo "$*" > "$stamp"
  fi
  log "building $dir"
  cmake --build "$dir" --parallel "$(nproc)"
}
