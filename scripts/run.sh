#!/usr/bin/env bash
# Builds and opens the Tidings desktop app. On first run it offers to host a group on this
# computer (the bundled server runs inside the app); nothing else needs setting up.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
(cd ui && npm run build)
exec cargo run --release --locked -p tidings-desktop --features custom-protocol
