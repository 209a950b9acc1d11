#!/usr/bin/env bash
# make demo: start a gateway on free ports (HTTP and its embedded MQTT broker) with a
# temporary data dir, run every shipped scenario with the simulator over WebSocket, then
# over MQTT, then over WebRTC (events on the data channel, speech on the Opus track),
# print one line per scenario and "N passed, M failed" per transport, and leave nothing
# running. Speaking scenarios (audio: true) run over ws and webrtc and are skipped over
# mqtt, and everywhere when the gateway was built without a recogniser.
set -uo pipefail
BIN=${BIN:-bin}
tmp=$(mktemp -d)
gw_pid=""
cleanup() {
  if [ -n "$gw_pid" ] && kill -0 "$gw_pid" 2>/dev/null; then
    kill -TERM "$gw_pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$gw_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$gw_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# --consent-ttl: short, so prompt-expires is quick, yet longer than a spoken "confirm"
# and its recognition take on a loaded CI machine.
"$BIN/earshot" serve --listen 127.0.0.1:0 --data-dir "$tmp/data" --consent-ttl 5s --log-level warn 2>"$tmp/gateway.log" &
gw_pid=$!
for _ in $(seq 100); do
  [ -s "$tmp/data/gateway.addr" ] && break
  kill -0 "$gw_pid" 2>/dev/null || { echo "demo: the gateway did not start:"; cat "$tmp/gateway.log"; exit 1; }
  sleep 0.1
done
[ -s "$tmp/data/gateway.addr" ] || { echo "demo: the gateway did not start in 10s"; cat "$tmp/gateway.log"; exit 1; }
addr=$(cat "$tmp/data/gateway.addr")

rc=0
for transport in ws mqtt webrtc; do
  echo "== scenarios over $transport"
  "$BIN/earshot-sim" run --transport "$transport" --gateway "http://$addr" --data-dir "$tmp/data" \
    --state "$tmp/sim-$transport" firmware-sim/scenarios/*.yaml || rc=1
done
if [ $rc -ne 0 ]; then
  echo "demo: gateway log tail:"; tail -n 20 "$tmp/gateway.log"
fi
exit $rc
