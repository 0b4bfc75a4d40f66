#!/usr/bin/env bash
# Builds the two Debian packages — the desktop app's (the Tauri bundler) and the headless
# server's (cargo-deb, with its systemd unit) — into target/debian/. With --test it then installs
# both into this machine as a host would (dpkg -i, apt-get install -f), starts the server the way
# its unit says, launches the installed desktop app under Xvfb and waits for its window, and
# purges both, checking nothing of theirs is left. It needs root, and it is not part of
# scripts/test.sh: two release builds take longer than CI's budget leaves (see the README).
set -euo pipefail
cd "$(dirname "$0")/.."

test=false
[[ "${1:-}" == "--test" ]] && test=true

started=$(date +%s)
# What is installed carries no debug information (the workspace's release profile keeps line
# tables for the benchmarks' profiles).
export CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=symbols
./scripts/deps.sh --test
# cargo-deb, kept in the workspace's .tools/ like tauri-driver.
if [[ ! -x .tools/bin/cargo-deb ]]; then
    cargo install cargo-deb --locked --version 3.8.0 --root .tools
fi
(cd ui && npm run build)

# The server: a release build, then the package around it.
cargo build --release --locked -p tidings-server
.tools/bin/cargo-deb -p tidings-server --no-build --strip --output target/debian/
# The desktop app: the Tauri bundler builds its release binary (with the UI embedded) and the
# package (no other download).
(cd src-tauri && ../ui/node_modules/.bin/tauri build --bundles deb)
cp target/release/bundle/deb/*.deb target/debian/
echo "packages built in $(($(date +%s) - started)) s:"
ls -l target/debian/*.deb

$test || exit 0

# ---- installed as a host would, then removed ----
[[ $(id -u) == 0 ]] || { echo "--test installs packages: run it as root" >&2; exit 1; }
fail() { echo "FAILED: $*" >&2; exit 1; }
server_deb=$(ls target/debian/tidings-server_*.deb)
desktop_deb=$(ls target/debian/*.deb | grep -v tidings-server_)
desktop_pkg=$(dpkg-deb -f "$desktop_deb" Package)
work=$(mktemp -d)
cleanup() {
    [[ -n "${server_pid:-}" ]] && kill "$server_pid" 2>/dev/null || true
    [[ -n "${app_pid:-}" ]] && kill "$app_pid" 2>/dev/null || true
    [[ -n "${xvfb_pid:-}" ]] && kill "$xvfb_pid" 2>/dev/null || true
    # Whatever happened, the machine is left without them.
    dpkg --purge tidings-server "$desktop_pkg" > /dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
# Left over from an earlier run that was stopped: from scratch.
dpkg --purge tidings-server "$desktop_pkg" > /dev/null 2>&1 || true

# dpkg leaves what is missing unconfigured; apt-get install -f brings it (fonts, WebKitGTK).
dpkg -i "$server_deb" "$desktop_deb" || true
DEBIAN_FRONTEND=noninteractive apt-get install -f -y -qq --no-install-recommends
for pkg in tidings-server "$desktop_pkg"; do
    [[ $(dpkg-query -W -f='${Status}' "$pkg") == "install ok installed" ]] || fail "$pkg not installed"
    dpkg -L "$pkg" > "$work/$pkg.files"
done
dpkg-query -W -f='${Depends}\n' "$desktop_pkg" | grep -q fonts-noto-color-emoji \
    || fail "the desktop package does not depend on fonts-noto-color-emoji"

# The server's package: its user, its settings readable by that user only, its unit.
getent passwd tidings >/dev/null || fail "no tidings user"
[[ $(stat -c '%U:%G %a' /etc/tidings/tidings.toml) == "root:tidings 640" ]] \
    || fail "/etc/tidings/tidings.toml is $(stat -c '%U:%G %a' /etc/tidings/tidings.toml)"
unit=/lib/systemd/system/tidings-server.service
[[ -f $unit ]] || unit=/usr/lib/systemd/system/tidings-server.service
[[ -f $unit ]] || fail "no systemd unit"
for directive in "User=tidings" "ProtectSystem=strict" "StateDirectory=tidings" "Restart=on-failure" "NoNewPrivileges=yes"; do
    grep -qx "$directive" "$unit" || fail "the unit lacks $directive"
done
systemd-analyze verify "$unit" || fail "systemd-analyze verify $unit"

# Started as the unit says (this machine runs no systemd): its command line, as its user, on its
# state directory, on a free loopback port instead of 7878 (an Environment= of the host's).
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
install -d -o tidings -g tidings -m 0750 /var/lib/tidings
setpriv --reuid=tidings --regid=tidings --init-groups --no-new-privs -- \
    env TIDINGS_LISTEN=127.0.0.1:0 $exec_start > "$work/server.out" 2> "$work/server.err" &
server_pid=$!
base=""
for _ in $(seq 100); do
    base=$(sed -n 's/^Tidings is listening on \(http[^ ]*\).*/\1/p' "$work/server.out")
    [[ -n $base ]] && break
    kill -0 "$server_pid" 2>/dev/null || fail "the server exited: $(cat "$work/server.err")"
    sleep 0.1
done
[[ -n $base ]] || fail "the server did not say where it listens"
password=$(sed -n 's/^  Password: *\([^ ]*\).*/\1/p' "$work/server.out")
[[ $(curl -s -o /dev/null -w '%{http_code}' "$base/healthz") == 200 ]] || fail "/healthz"
[[ $(curl -s -o /dev/null -w '%{http_code}' "$base/api/login" -H 'content-type: application/json' \
    -d "{\"name\":\"owner\",\"password\":\"$password\"}") == 200 ]] || fail "the owner cannot log in"
[[ $(stat -c %U /var/lib/tidings/tidings.db) == tidings ]] || fail "the database is not the service user's"
kill -TERM "$server_pid"
wait "$server_pid" || fail "the server did not exit cleanly on SIGTERM"
server_pid=""
echo "ok: the server package's service serves, as its own user"

# The desktop app, from /usr/bin, under Xvfb, on a fresh home: its window appears.
app=$(grep -m1 '^/usr/bin/' "$work/$desktop_pkg.files") || fail "no /usr/bin program in $desktop_pkg"
Xvfb :87 -screen 0 1280x800x24 -nolisten tcp > "$work/xvfb.log" 2>&1 &
xvfb_pid=$!
for _ in $(seq 100); do
    DISPLAY=:87 xdpyinfo > /dev/null 2>&1 && break
    sleep 0.1
done
DISPLAY=:87 xdpyinfo > /dev/null 2>&1 || fail "Xvfb did not start: $(cat "$work/xvfb.log")"
mkdir -p "$work/home"
HOME="$work/home" DISPLAY=:87 NO_AT_BRIDGE=1 dbus-run-session -- "$app" > "$work/app.log" 2>&1 &
app_pid=$!
window=$(DISPLAY=:87 timeout 60 xdotool search --sync --onlyvisible --name '^Tidings$' | head -1) \
    || fail "no Tidings window from $app: $(cat "$work/app.log")"
# Mapped is not drawn: wait until the window shows more than its background (the first-run
# screen), which also says the UI embedded in the release build loaded.
drawn=""
for _ in $(seq 150); do
    DISPLAY=:87 import -window "$window" target/debian/installed-app.png
    spread=$(convert target/debian/installed-app.png -colorspace Gray -format '%[fx:standard_deviation]' info:)
    if awk -v s="$spread" 'BEGIN { exit !(s > 0.02) }'; then drawn=yes; break; fi
    sleep 0.2
done
[[ -n $drawn ]] || fail "the window stayed blank: $(cat "$work/app.log")"
echo "ok: $app shows its first-run screen (target/debian/installed-app.png)"
kill "$app_pid"; wait "$app_pid" 2>/dev/null || true; app_pid=""
kill "$xvfb_pid"; wait "$xvfb_pid" 2>/dev/null || true; xvfb_pid=""

# Removed: nothing of either package is left, nor the server's data and settings.
dpkg --purge tidings-server "$desktop_pkg"
for pkg in tidings-server "$desktop_pkg"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "installed" && fail "$pkg still installed"
    while read -r path; do
        [[ -f $path ]] && fail "$path is left after purging $pkg"
    done < "$work/$pkg.files"
done
[[ ! -e /var/lib/tidings && ! -e /etc/tidings ]] || fail "the server's data or settings are left"
echo "ok: both packages installed, ran and were purged cleanly in $(($(date +%s) - started)) s in all"
