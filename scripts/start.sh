#!/usr/bin/env bash
# The platform in one command: installs what is missing, builds the test guest, starts
# vmhostd on the embedded default (data dir var/host1, 127.0.0.1:8470) unless it already
# runs, creates and boots a demo VM, and prints where to look.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
data="$root/var/host1"
listen="${VMHOST_LISTEN:-127.0.0.1:8470}"
export VMHOST_DATA_DIR="$data"
unset VMHOST_URL VMHOST_TOKEN

scripts/install-deps.sh
[ -x scripts/build.sh ] && scripts/build.sh
echo "start: test guest image at $(scripts/build-guest.sh | tail -n 1)"

mkdir -p "$data"
pid=$(cat "$data/vmhostd.pid" 2>/dev/null || true)
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
  echo "start: vmhostd already running (pid $pid)"
else
  echo "start: starting vmhostd (log: $data/vmhostd.log)"
  nohup bin/vmhostd --data-dir "$data" --listen "$listen" >>"$data/vmhostd.log" 2>&1 &
  for _ in $(seq 1 120); do
    [ -f "$data/daemon.json" ] && grep -q "\"pid\": $!" "$data/daemon.json" 2>/dev/null && break
    kill -0 $! 2>/dev/null || { tail -n 20 "$data/vmhostd.log"; exit 1; }
    sleep 0.5
  done
fi

if ! bin/vmhost Get-VM -Name demo >/dev/null 2>&1; then
  bin/vmhost New-VM -Name demo -MemoryStartupBytes 256MB >/dev/null
  echo "start: created VM 'demo'"
fi
state=$(bin/vmhost Get-VM -Name demo -Json | sed -n 's/.*"State": "\([A-Za-z]*\)".*/\1/p')
if [ "$state" = "Off" ] || [ "$state" = "Saved" ]; then bin/vmhost Start-VM -Name demo; fi
for _ in $(seq 1 90); do
  bin/vmhost Get-VM -Name demo -Json | grep -q '"Heartbeat": "OK"' && break
  sleep 1
done
bin/vmhost Get-VM

url=$(sed -n 's/.*"url": "\(.*\)".*/\1/p' "$data/daemon.json")
cat <<EOT

vmhost is running.
  API / web console : $url/   (sign in with the token in $data/token)
  OpenAPI document  : $url/api/v1/openapi.json
  CLI               : export VMHOST_DATA_DIR=$data   (the default when run from this checkout)
                      bin/vmhost Get-VM
                      bin/vmhost Invoke-Command -VMName demo -ScriptBlock 'uname -a; cat /proc/meminfo | head -3'
                      bin/vmhost Get-VMConsole demo
                      bin/vmhost Stop-VM demo
  Logs              : $data/vmhostd.log, $data/vms/<id>/serial.log, $data/events.jsonl
  Stop the daemon   : kill \$(cat $data/vmhostd.pid)   (VMs keep running; the next vmhostd re-attaches)
EOT
