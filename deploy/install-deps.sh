#!/usr/bin/env bash
# Installs every build and test dependency of triaged from Debian 12 packages.
# Idempotent: packages already present are left alone; safe to run on every CI start.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libboost1.81-dev
  libsimdjson-dev
  librocksdb-dev
  prometheus-cpp-dev
  libabsl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libyaml-cpp-dev
  libssl-dev openssl
  libhyperscan-dev
  libsystemd-dev
  systemd
  libspdlog-dev libfmt-dev
  clang libclang-rt-14-dev
  tzdata
  curl python3
  file
  debootstrap systemd-container
  nginx-light wrk
  libnats-dev nats-server
  prometheus
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
