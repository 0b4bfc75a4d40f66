#!/usr/bin/env bash
# Installs what building (and, with --test, testing) Tidings needs on a fresh machine, skipping
# whatever is already there: Debian packages, then the UI's npm packages (from the lock file).
set -euo pipefail
cd "$(dirname "$0")/.."

# Building the desktop app: WebKitGTK (pulls in GTK, libsoup, JavaScriptCore, D-Bus) and the
# tray icon's indicator library.
packages=(libwebkit2gtk-4.1-dev libayatana-appindicator3-dev pkg-config build-essential)
if [[ "${1:-}" == "--test" ]]; then
    # Testing: a virtual display, the WebKit WebDriver, a D-Bus session bus, screenshots.
    packages+=(xvfb xauth webkit2gtk-driver dbus dbus-daemon dbus-x11 x11-utils xdotool imagemagick)
    # Hostile proxies for the transport ladder's tests: nginx in front of the server, squid as
    # the client's forward proxy (each test starts its own on a loopback port).
    packages+=(nginx squid)
    # The web app's tests: Chromium and its WebDriver (fonts so pages render as they would).
    packages+=(chromium chromium-driver fonts-liberation)
    # The PostgreSQL store's and the cluster's tests: each test process starts its own servers on
    # loopback in a temp dir (tidings-engines); psql makes their databases.
    packages+=(postgresql postgresql-client redis-server)
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    sudo=""
    [[ $(id -u) == 0 ]] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The desktop app's end-to-end tests drive the real window through tauri-driver (a WebDriver
# front for WebKitWebDriver), kept in the workspace's .tools/ so it needs no system install.
if [[ "${1:-}" == "--test" ]] && [[ ! -x .tools/bin/tauri-driver ]]; then
    cargo install tauri-driver --locked --root .tools
fi

# From PyPI, pinned: the WebSocket conformance suite (the Autobahn|Testsuite cases, run by
# kosoku) and schemathesis, which tests the HTTP API against its OpenAPI document.
if [[ "${1:-}" == "--test" ]]; then
    for pinned in kosoku==0.1.0 schemathesis==4.32.5; do
        if [[ $(python3 -m pip show "${pinned%%==*}" 2>/dev/null | sed -n 's/^Version: //p') != "${pinned##*==}" ]]; then
            python3 -m pip install --quiet --disable-pip-version-check "$pinned"
        fi
    done
fi

# The UI's packages, exactly as locked.
if [[ ! -d ui/node_modules ]] || [[ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]]; then
    (cd ui && npm ci --no-audit --no-fund)
fi
