#!/usr/bin/env bash
# Builds the Lambda package deploy/bootstrap.zip (binary `bootstrap` for the
# provided.al2023 runtime) inside Amazon Linux 2023, so the binary links against the
# glibc the runtime has. Needs docker. ARCH=arm64 (default) or x86_64.
#
#   deploy/package-lambda.sh && aws s3 cp deploy/bootstrap.zip s3://CODE-BUCKET/flowlens/bootstrap.zip
set -euo pipefail
cd "$(dirname "$0")/.."
ARCH="${ARCH:-arm64}"
case "$ARCH" in
  arm64) PLATFORM=linux/arm64 ;;
  x86_64) PLATFORM=linux/amd64 ;;
  *) echo "ARCH must be arm64 or x86_64" >&2; exit 2 ;;
esac
docker run --rm --platform "$PLATFORM" -v "$PWD":/src -w /src \
  -v flowlens-cargo-registry:/root/.cargo/registry \
  public.ecr.aws/amazonlinux/amazonlinux:2023 bash -euc '
    dnf install -y -q gcc zip >/dev/null
    curl -sSf https://sh.rustup.rs | sh -s -- -y -q --profile minimal >/dev/null
    . "$HOME/.cargo/env"
    CARGO_TARGET_DIR=/src/target/lambda cargo build --release --locked -p flowlens-lambda --bin bootstrap
    cd /src/target/lambda/release && rm -f /src/deploy/bootstrap.zip && zip -q -9 /src/deploy/bootstrap.zip bootstrap'
echo "Wrote deploy/bootstrap.zip ($ARCH)."
