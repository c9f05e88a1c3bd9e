#!/usr/bin/env bash
# The .deb (built by check-package.sh) on a booted Debian 12 with systemd as PID 1, in
# systemd-nspawn: install, start, a good and a refused reload, journal priorities and fields,
# upgrade, socket activation, remove and purge (deploy/package-test/in-container.sh).
# The root comes from debootstrap (about a minute) and is kept in build/nspawn-root.
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
deb=$(ls build/release/triaged_*.deb)
root=build/nspawn-root
if [[ ! -x $root/usr/lib/systemd/systemd ]]; then
  # The host's mirror, so the container finds the library versions the package was built on.
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  $sudo rm -rf "$root.tmp"
  $sudo debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$root.tmp" \
    "${mirror:-http://deb.debian.org/debian}" > build/debootstrap.log
  $sudo mv "$root.tmp" "$root"
fi
if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
  $sudo rm -f "$root/etc/apt/sources.list"
  $sudo cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/"
fi
$sudo chroot "$root" apt-get update -q > /dev/null
$sudo cp "$deb" "$root/root/triaged.deb"
$sudo install -m 755 deploy/package-test/in-container.sh "$root/root/in-container.sh"
$sudo install -m 644 deploy/package-test/triaged-package-test.service "$root/etc/systemd/system/"
$sudo ln -sf /etc/systemd/system/triaged-package-test.service \
  "$root/etc/systemd/system/multi-user.target.wants/triaged-package-test.service"
$sudo rm -f "$root/root/check.result" "$root/root/check.log"
echo "check-package-booted: booting $root"
$sudo timeout 600 systemd-nspawn --boot --register=no --keep-unit --resolv-conf=copy-host \
  --console=pipe -D "$root" > build/nspawn-console.log 2>&1 < /dev/null || true
result=$($sudo cat "$root/root/check.result" 2>/dev/null || echo none)
if [[ $result != 0 ]]; then
  echo "check-package-booted: failed ($result)"
  $sudo cat "$root/root/check.log" 2>/dev/null | tail -40
  tail -20 build/nspawn-console.log
  exit 1
fi
$sudo grep -q "^in-container: ok" "$root/root/check.log"
echo "check-package-booted: ok"
