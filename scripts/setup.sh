#!/usr/bin/env bash
# Installs what building and testing Bourse needs on a Debian machine (idempotent, quiet when
# everything is already there). Called by scripts/test.sh and scripts/demo.sh.
set -euo pipefail

packages=(
  libnng-dev            # NNG: the transport
  libprotobuf-c-dev     # protobuf-c: the wire encoding
  protobuf-c-compiler   # protoc-c: scripts/gen-proto.sh
  libglpk-dev           # GLPK: the linear programs of the policies
  libsqlite3-dev        # SQLite: the gateway's durable job store
  protobuf-compiler     # protoc: the Python interoperability test
  python3-protobuf      # Python's protobuf: the interoperability test
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "setup: swift not found on PATH (Swift 6 toolchain needed)" >&2; exit 1; }
