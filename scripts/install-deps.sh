#!/usr/bin/env bash
# Installs the Debian packages dtrain needs to build, test and run its examples.
# Safe to run repeatedly: apt is skipped when everything is already installed.
set -euo pipefail

packages=(build-essential cmake pkg-config libopenblas-dev zlib1g-dev
          libopenmpi-dev openmpi-bin libprotobuf-c-dev protobuf-c-compiler libuv1-dev
          dataset-fashion-mnist python3 python3-venv time util-linux
          clang
          # image folders: PNG and JPEG decoding (libjpeg-dev is libjpeg62-turbo-dev)
          libpng-dev libjpeg-dev
          # deploy/ tests: `docker-compose config` (no engine needed; brings
          # python3-yaml), network namespaces and tc for the netns cluster.
          docker-compose iproute2
          # oneDNN for the CPU backend's convolutions and bf16 GEMMs
          libdnnl-dev
          # .keras export and import: model.weights.h5 through libhdf5
          libhdf5-dev)
if [ "${1:-}" = "--bench" ]; then
  packages+=(python3-torch)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
