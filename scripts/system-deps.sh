#!/usr/bin/env bash
# The system packages `npm test` needs: redis-server (each suite starts its own),
# Chromium (the browser suites), nginx (the load balancer of `npm run stack`),
# nftables (the partition suite drops loopback packets with `nft`; it needs root to
# use it, and prints why it skips otherwise) and Prometheus's promtool (it checks and
# unit-tests deploy/prometheus/alerts.yml).
# Runs first in `npm test`. When all are present it only looks (a few milliseconds).
# Missing ones are installed with apt-get when that is possible without a password
# (as root, or with passwordless sudo); otherwise it stops at once and prints the
# one command that installs them. kubectl stays optional: the tests that need it
# print why they skip.
set -euo pipefail

# The same places e2e/browser.test.ts looks.
chromium_found() {
  local candidate
  for candidate in "${CHROMIUM_PATH:-}" /usr/bin/chromium /usr/bin/chromium-browser /snap/bin/chromium; do
    [ -n "$candidate" ] && [ -x "$candidate" ] && return 0
  done
  return 1
}

# support/nginx.ts also looks in /usr/sbin, which a non-root PATH often lacks.
nginx_found() {
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || [ -x /usr/local/sbin/nginx ]
}

# nft lives in /usr/sbin, which a non-root PATH often lacks.
nft_found() {
  command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ]
}

# Ubuntu ships Chromium as a snap, installed through its chromium-browser package.
chromium_package=chromium
if [ -r /etc/os-release ] && grep -qi '^ID=ubuntu' /etc/os-release; then
  chromium_package=chromium-browser
fi

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
chromium_found || missing+=("$chromium_package")
nginx_found || missing+=(nginx)
nft_found || missing+=(nftables)
# Debian's `prometheus` package carries promtool.
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)

if [ "${#missing[@]}" -gt 0 ]; then
  install="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "npm test needs system packages that are missing (${missing[*]}), and this is not Debian or Ubuntu." >&2
    echo "Install them with your package manager (Chromium at /usr/bin/chromium, or set CHROMIUM_PATH), then run npm test again." >&2
    exit 1
  fi
  if [ "$(id -u)" -eq 0 ]; then
    sudo=''
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo='sudo -n'
  else
    echo "npm test needs system packages that are missing: ${missing[*]}. Install them with:" >&2
    echo >&2
    echo "  sudo sh -c '$install'" >&2
    echo >&2
    echo "then run npm test again." >&2
    exit 1
  fi
  echo "installing the system packages npm test needs: ${missing[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends ${missing[*]}"
fi

if ! command -v kubectl >/dev/null 2>&1; then
  echo "note: kubectl is missing, so the kustomize render checks will be skipped (they print why)"
fi
