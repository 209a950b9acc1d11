#!/usr/bin/env bash
# Installs what earshot's build and tests need, idempotently: Debian packages that are
# missing (with one retry: the first apt-get on a fresh machine has failed transiently)
# and the Go modules. Used by `make deps`, `make run`, `make test` and .ci/run.
set -euo pipefail

# gcc and libc6-dev: cgo, which -race needs.
# mosquitto, mosquitto-clients: the real broker and CLI clients the MQTT tests use.
# mosquitto-dev: the plugin headers for cmd/earshot-mosquitto-auth.
# pocketsphinx*, libsphinxbase-dev, pkg-config: the embedded recogniser (cgo) and its
#   English model.
# espeak-ng: prompt speech, and the simulator's and accuracy harness's voices.
# sox: handy for device makers' audio (docs); libopus-dev: the simulator's Opus encoder.
PACKAGES=(gcc libc6-dev pkg-config mosquitto mosquitto-clients mosquitto-dev
  pocketsphinx pocketsphinx-en-us libpocketsphinx-dev libsphinxbase-dev espeak-ng sox libopus-dev)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
    echo "deps: missing packages ${missing[*]}; install them as root" >&2
    exit 1
  fi
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  install() { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"; }
  # Installing mosquitto would start Debian's system broker on port 1883, where the
  # gateway's embedded broker listens: keep package scripts from starting services
  # (policy-rc.d, exit 101) unless the machine already has a policy.
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    guard=1
  fi
  echo "deps: installing ${missing[*]}"
  rc=0
  install || { echo "deps: apt-get failed; retrying once" >&2; sleep 5; install; } || rc=$?
  [ -n "$guard" ] && $SUDO rm -f /usr/sbin/policy-rc.d
  [ $rc -eq 0 ] || exit $rc
fi

command -v go >/dev/null || export PATH=/usr/local/go/bin:$PATH
go mod download
