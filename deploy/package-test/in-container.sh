#!/bin/bash
# Runs inside a booted Debian 12 (systemd as PID 1) as the unit triaged-package-test.service,
# with the .deb at /root/triaged.deb. Writes its trace to /root/check.log and its exit code to
# /root/check.result, then powers the container off. Each step states what an operator expects.
set -euo pipefail
exec > /root/check.log 2>&1
trap 'echo $? > /root/check.result; systemctl poweroff --no-block' EXIT
set -x
export DEBIAN_FRONTEND=noninteractive

fail() { echo "FAILED: $*"; exit 1; }
main_pid() { systemctl show -p MainPID --value triaged.service; }
wait_active() {
  for _ in $(seq 100); do systemctl is-active -q "$1" && return 0; sleep 0.1; done
  fail "$1 is not active"
}

# Install: the user and the folders exist, nothing runs until the config is edited.
apt-get install -y -q /root/triaged.deb > /dev/null
getent passwd triaged > /dev/null || fail "no triaged user"
[ "$(stat -c %a /etc/triaged/credentials)" = 700 ] || fail "credentials folder not 0700"
systemctl is-active -q triaged.service && fail "started on install"
triaged --check-config /etc/triaged/config.yaml

# Start; the journal gets real priorities and the line's fields.
systemctl start triaged.service
wait_active triaged.service
journalctl -u triaged.service EVENT=ready -o cat | grep -q "event=ready ingest=127.0.0.1:8080" \
  || fail "no EVENT=ready field with the bound address"
first=$(main_pid)

# A good reload succeeds; a refused one fails systemctl reload and is an error in the journal.
systemctl reload triaged.service || fail "a good reload failed"
cp /etc/triaged/config.yaml /root/good.yaml
sed -i 's/default_team: support/default_team: nobody/' /etc/triaged/config.yaml
systemctl reload triaged.service 2> /root/reload.err && fail "a refused reload reported success"
journalctl -u triaged.service -p err -o cat | grep -q "event=config_reload_refused" \
  || fail "the refusal is not at priority err"
journalctl -u triaged.service -p err -o cat | grep -q "event=ready" && fail "info lines at priority err"
journalctl -u triaged.service -p err PRIORITY=3 -o cat | grep -q "unknown team 'nobody'" \
  || fail "the journal does not say why"
cp /root/good.yaml /etc/triaged/config.yaml
systemctl is-active -q triaged.service || fail "a refused reload stopped the service"
[ "$(main_pid)" = "$first" ] || fail "a reload restarted the service"

# An upgrade (the same package again) restarts the running service on the new files.
dpkg -i /root/triaged.deb > /dev/null
wait_active triaged.service
[ "$(main_pid)" != "$first" ] || fail "the upgrade did not restart the service"

# Socket activation: stop the service first, then the socket takes loopback:8080.
systemctl stop triaged.service
systemctl enable --now triaged.socket
systemctl enable triaged.service
systemctl show -p Listen --value triaged.socket | grep -q "127.0.0.1:8080" || fail "the socket is not on loopback"
exec 3<>/dev/tcp/127.0.0.1/8080
printf 'GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
head -c 12 <&3 | grep -q "HTTP/1.1 404" || fail "no answer through the socket"
exec 3<&-
wait_active triaged.service

# Remove: nothing of it runs and no link points at a deleted unit; the queue stays.
apt-get remove -y -q triaged > /dev/null
systemctl is-active -q triaged.service && fail "the service runs after remove"
systemctl is-active -q triaged.socket && fail "the socket listens after remove"
[ -z "$(find /etc/systemd/system -xtype l -name 'triaged*')" ] || fail "dangling unit links after remove"
[ -d /var/lib/private/triaged ] || fail "remove deleted the state"

# Purge: the state, the config and the credentials go.
apt-get purge -y -q triaged > /dev/null
[ ! -e /var/lib/private/triaged ] || fail "state left after purge"
[ ! -e /etc/triaged ] || fail "config left after purge"
echo "in-container: ok"
