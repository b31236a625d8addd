#!/usr/bin/env bash
# Shows everything vendor/argon2 changes in the published argon2 crate it was copied from:
# downloads that release from crates.io, checks it is the one published, and diffs.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=0.6.0
SHA256=134c52ddac6d63c576bef8168db10c83c49c26444ecbc68060fef078925a901c
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

curl -sSfL "https://static.crates.io/crates/argon2/argon2-$VERSION.crate" -o "$WORK/argon2.crate"
echo "$SHA256  $WORK/argon2.crate" | sha256sum --check --quiet
tar -xzf "$WORK/argon2.crate" -C "$WORK"
# The registry's own files (Cargo.lock, .cargo-ok) are left out of the copy on purpose.
diff -ru --exclude=Cargo.lock "$WORK/argon2-$VERSION" vendor/argon2 | sed "s|$WORK/||" || true
