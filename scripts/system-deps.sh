#!/usr/bin/env bash
# Install the Debian packages the tests need (real Mosquitto, GStreamer RTSP server, PostgreSQL),
# and a CJK font (the console's default language is zh-CN; without one Chromium draws boxes),
# only when something is missing, so a machine that has them starts at once.
set -euo pipefail
need=()
for pkg in mosquitto python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
           gstreamer1.0-plugins-bad gstreamer1.0-rtsp postgresql systemd openssl chromium fonts-noto-cjk; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
command -v npm >/dev/null || need+=(npm)  # the map library comes from the npm registry (scripts/web-vendor.sh)
if [ ${#need[@]} -gt 0 ]; then
  echo "[system-deps] installing: ${need[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
