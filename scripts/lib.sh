# Shared helpers of scripts/demo and scripts/test (sourced, not run).

repo_root() { cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Install the Debian packages listed in scripts/debian-packages.txt that are missing.
ensure_debian_packages() {
    local list missing=()
    list="$(repo_root)/scripts/debian-packages.txt"
    command -v dpkg-query >/dev/null || { echo "not a Debian system: install the packages in $list yourself" >&2; return 0; }
    while read -r package condition command; do
        [ -z "$package" ] && continue
        if [ "$condition" = "if-missing:" ] && command -v "$command" >/dev/null; then continue; fi
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done < <(grep -v '^\s*#' "$list" | sed 's/\s*#.*//')
    [ "${#missing[@]}" -eq 0 ] && return 0
    echo "==> installing Debian packages: ${missing[*]}"
    # Postfix asks how to configure itself; the tests run their own instances.
    echo "postfix postfix/main_mailer_type select No configuration" | as_root debconf-set-selections
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # Package post-install scripts may start system daemons; the tests start their own.
    for service in postfix bind9 named dovecot knot pdns samba samba-ad-dc smbd nmbd winbind rspamd clamav-daemon; do
        as_root service "$service" stop >/dev/null 2>&1 || true
    done
}

# Create .venv (once) and install the project with the given extras into it.
ensure_venv() {
    local root extras="$1"
    root="$(repo_root)"
    if [ ! -x "$root/.venv/bin/python" ]; then
        echo "==> creating $root/.venv"
        python3 -m venv "$root/.venv"
    fi
    echo "==> installing the appliance${extras:+ with [$extras]} into .venv"
    local log="$root/.venv/pip-install.log"
    if ! { "$root/.venv/bin/python" -m pip install -q --upgrade pip &&
           "$root/.venv/bin/python" -m pip install -q -e "$root${extras:+[$extras]}"; } >"$log" 2>&1; then
        cat "$log" >&2
        echo "pip install failed; the log above is also in $log" >&2
        return 1
    fi
}
