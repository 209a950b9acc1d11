#!/usr/bin/env bash
# Installs what earshot's build and tests need, idempotently: Debian packages that are
# missing (with one retry: the first apt-get on a fresh machine has failed transiently)
# and the Go modules. Used by `make deps`, `make run`, `make test` and .ci/run.
set -euo pipefail

# gcc and libc6-dev: cgo, which -race needs.
PACKAGES=(gcc libc6-dev)

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
  echo "deps: installing ${missing[*]}"
  install || { echo "deps: apt-get failed; retrying once" >&2; sleep 5; install; }
fi

command -v go >/dev/null || export PATH=/usr/local/go/bin:$PATH
go mod download
