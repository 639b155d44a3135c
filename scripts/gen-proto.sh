#!/usr/bin/env bash
# Regenerates the protobuf-c code committed under Sources/BourseProtoC from proto/bourse.proto.
# Needs protoc-c (Debian: protobuf-c-compiler). Run from anywhere; commit the result.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
command -v protoc-c >/dev/null || { echo "protoc-c not found: apt-get install -y protobuf-c-compiler" >&2; exit 1; }
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
protoc-c --proto_path="$root/proto" --c_out="$out" "$root/proto/bourse.proto"
mkdir -p "$root/Sources/BourseProtoC/include"
cp "$out/bourse.pb-c.c" "$root/Sources/BourseProtoC/bourse.pb-c.c"
cp "$out/bourse.pb-c.h" "$root/Sources/BourseProtoC/include/bourse.pb-c.h"
echo "regenerated Sources/BourseProtoC from proto/bourse.proto"
