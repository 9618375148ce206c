#!/usr/bin/env bash
# Start, stop or query the forward proxy through which test hosts reach PyPI and
# the npm registry (HTTPS from inside a test host does not get through on these
# machines; see ../shared/testhosts/README.md). Debian's tinyproxy, with a
# config of its own, listening only on the engine's bridge address and
# tunnelling only to port 443. The Debian mirror is reached directly.
#
#   testhosts/proxy.sh start    install tinyproxy if needed, start it, wait for it
#   testhosts/proxy.sh stop     stop the proxy this script started
#   testhosts/proxy.sh status   say whether it runs
#   testhosts/proxy.sh url      print the proxy's URL as test hosts use it
set -euo pipefail

STATE_DIR=${SITEOPS_PROXY_STATE:-/run/siteops-proxy}
PIDFILE="$STATE_DIR/tinyproxy.pid"
PORT=${SITEOPS_PROXY_PORT:-8888}

log() { printf '[proxy] %s\n' "$*" >&2; }

# The address of the engine's default bridge (docker0) on this machine.
bridge_address() { ip -4 -o addr show dev docker0 2>/dev/null | awk '{ sub("/.*", "", $4); print $4; exit }'; }

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

start() {
  if running; then log "already running (pid $(cat "$PIDFILE"))"; return 0; fi
  command -v tinyproxy >/dev/null || {
    log "installing tinyproxy from Debian"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tinyproxy >/dev/null
  }
  local address
  address=$(bridge_address)
  [ -n "$address" ] || { log "the container engine's bridge is not up (testhosts/engine.sh start)"; return 1; }
  mkdir -p "$STATE_DIR"
  cat >"$STATE_DIR/tinyproxy.conf" <<CONF
User nobody
Group nogroup
Port $PORT
Listen $address
Timeout 120
MaxClients 64
Allow 172.16.0.0/12
ConnectPort 443
PidFile "$PIDFILE"
LogFile "$STATE_DIR/tinyproxy.log"
LogLevel Notice
CONF
  : >"$STATE_DIR/tinyproxy.log"
  chown nobody:nogroup "$STATE_DIR/tinyproxy.log"
  tinyproxy -c "$STATE_DIR/tinyproxy.conf"
  for _ in $(seq 1 40); do
    if running; then log "listening on $address:$PORT"; return 0; fi
    sleep 0.25
  done
  log "tinyproxy did not start; its log:"; tail -n 20 "$STATE_DIR/tinyproxy.log" >&2 || true
  return 1
}

stop() {
  if ! running; then rm -f "$PIDFILE"; log "not running"; return 0; fi
  kill -TERM "$(cat "$PIDFILE")"
  for _ in $(seq 1 40); do running || break; sleep 0.25; done
  rm -f "$PIDFILE"
  log "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if running; then echo "running (http://$(bridge_address):$PORT)"; else echo "stopped"; exit 1; fi ;;
  url) echo "http://$(bridge_address):$PORT" ;;
  *) echo "usage: $0 start|stop|status|url" >&2; exit 2 ;;
esac
