# shellcheck shell=bash
# Sourced by check-ops.sh, check-kubernetes.sh, generate-ops.sh and e2e.sh: installs the tools
# they need, only when missing, and keeps the count of their checks.
# Debian packages come through apt-get (root, as on CI), Python ones through pip.

apt_updated=

# apt_install PACKAGE...: installs Debian packages, running `apt-get update` once first.
apt_install() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "need root to install $* with apt-get; install it by hand" >&2
        return 1
    fi
    if [ -z "$apt_updated" ]; then
        apt-get update -qq >/dev/null 2>&1 || { echo "apt-get update failed" >&2; return 1; }
        apt_updated=1
    fi
    local out
    out=$(DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" 2>&1) || {
        printf '%s\n' "$out" >&2
        return 1
    }
}

# need_cmd COMMAND PACKAGE: makes sure COMMAND exists, installing the Debian PACKAGE if not.
need_cmd() {
    command -v "$1" >/dev/null 2>&1 && return 0
    echo "installing $2 (for $1)" >&2
    apt_install "$2" || true
    command -v "$1" >/dev/null 2>&1 || { echo "cannot find or install $1 (package $2)" >&2; return 1; }
}

# pip_install PACKAGE...: installs Python packages for python3.
pip_install() {
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "$@" >&2
}

# need_pycmd COMMAND PYPI-PACKAGE: makes sure COMMAND exists, installing it from PyPI if not.
# pip puts scripts where python3 keeps them, which need not be on PATH: add that directory.
need_pycmd() {
    local scripts
    scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
    case ":$PATH:" in *":$scripts:"*) ;; *) PATH="$PATH:$scripts" ;; esac
    command -v "$1" >/dev/null 2>&1 && return 0
    echo "installing $2 from PyPI (for $1)" >&2
    pip_install "$2" || true
    hash -r
    command -v "$1" >/dev/null 2>&1 || { echo "cannot find or install $1 (PyPI $2)" >&2; return 1; }
}

# need_pymodule MODULE PYPI-PACKAGE: makes sure python3 can import MODULE.
need_pymodule() {
    python3 -c "import $1" 2>/dev/null && return 0
    echo "installing $2 from PyPI (for python3 module $1)" >&2
    pip_install "$2" || true
    python3 -c "import $1" 2>/dev/null || { echo "cannot import or install python3 module $1" >&2; return 1; }
}

# Test bookkeeping: `check NAME COMMAND...` runs a check, prints `ok` or `FAIL` with its
# output, and counts; `summary PREFIX` prints the closing `PREFIX: N passed, M failed` line
# and returns non-zero when something failed.
checks_passed=0
checks_failed=0

check() {
    local name=$1 out rc
    shift
    out=$("$@" 2>&1)
    rc=$?
    if [ "$rc" -eq 0 ]; then
        checks_passed=$((checks_passed + 1))
        echo "ok   - $name"
        [ -n "$out" ] && [ -n "${VERBOSE:-}" ] && printf '%s\n' "$out" | sed 's/^/       /'
    else
        checks_failed=$((checks_failed + 1))
        echo "FAIL - $name"
        [ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/       /'
    fi
    return 0
}

# note NAME COMMAND...: like check, but always shows the command's output (figures worth seeing).
note() {
    VERBOSE=1 check "$@"
}

summary() {
    echo "$1: $checks_passed passed, $checks_failed failed"
    [ "$checks_failed" -eq 0 ]
}
