#!/usr/bin/env bash
# Install the browser libraries the hub's city pages use, from the npm registry, into the package
# (gridwarden/hub/city_web/vendor/, not committed). The hub serves them itself: no CDN at run time.
#   Leaflet 1.9.4 (BSD-2-Clause): the one map. Chosen over MapLibre GL because it draws with plain
#   DOM/SVG (no WebGL, so it also renders in a headless browser and on old control-room PCs) and
#   reads raster tiles, which is what a district's offline MBTiles basemap holds.
# Safe to run again: does nothing when the files are there.
set -euo pipefail
cd "$(dirname "$0")/.."
LEAFLET_VERSION=1.9.4
dest=gridwarden/hub/city_web/vendor/leaflet
if [ -f "$dest/leaflet.js" ] && grep -q "$LEAFLET_VERSION" "$dest/VERSION" 2>/dev/null; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "[web-vendor] npm is missing: apt-get install npm (the map page needs Leaflet)" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "[web-vendor] installing leaflet@$LEAFLET_VERSION from the npm registry"
npm install --silent --no-audit --no-fund --ignore-scripts --prefix "$work" "leaflet@$LEAFLET_VERSION" >/dev/null
mkdir -p "$dest"
cp -r "$work/node_modules/leaflet/dist/." "$dest/"
cp "$work/node_modules/leaflet/LICENSE" "$dest/LICENSE"
echo "$LEAFLET_VERSION" > "$dest/VERSION"
