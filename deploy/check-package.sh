#!/usr/bin/env bash
# Builds the .deb from build/release, installs it with apt-get on this machine, and checks what
# an operator does first: the shipped config validates, the unit verifies, the tools run.
# Then removes it again. Needs root or sudo; CI runs it on its fresh Debian 12 machine.
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
rm -f build/release/triaged_*.deb
(cd build/release && cpack -G DEB > /dev/null)
deb=$(ls build/release/triaged_*.deb)
echo "check-package: $deb ($(du -h "$deb" | cut -f1))"
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "./$deb" > /dev/null
triaged --version
triaged --check-config /etc/triaged/config.yaml
triagectl check-config /etc/triaged/config.yaml
systemd-analyze verify --man=no /usr/lib/systemd/system/triaged.service /usr/lib/systemd/system/triaged.socket
getent passwd triaged > /dev/null
test -d /etc/triaged/credentials && test "$(stat -c %a /etc/triaged/credentials)" = 700
dpkg-query -W -f='${Conffiles}\n' triaged | grep -q /etc/triaged/config.yaml
(cd /usr/share/triaged/prometheus && promtool check rules alerts.yml > /dev/null)
$sudo env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q triaged > /dev/null
echo "check-package: ok"
