#!/usr/bin/env bash
# Start, stop or query the container engine that runs siteops' disposable test hosts.
#
# PID 1 on the development and CI machines is not systemd, so the Docker daemon
# is started by hand with its own socket, data root and pid file. `stop` only
# stops a daemon this script started (it records that in the pid file).
#
#   testhosts/engine.sh start    install docker.io if needed, start dockerd, wait for it
#   testhosts/engine.sh stop     stop the dockerd this script started, wait for it to exit
#   testhosts/engine.sh status   say whether the engine answers
#   testhosts/engine.sh env      print `export DOCKER_HOST=...` for eval
set -euo pipefail

STATE_DIR=${SITEOPS_ENGINE_STATE:-/run/siteops-engine}
DATA_ROOT=${SITEOPS_ENGINE_DATA:-/var/lib/siteops-engine}
SOCKET="$STATE_DIR/docker.sock"
PIDFILE="$STATE_DIR/dockerd.pid"
LOG="$STATE_DIR/dockerd.log"
export DOCKER_HOST="unix://$SOCKET"
DOCKER=/usr/bin/docker

log() { printf '[engine] %s\n' "$*" >&2; }

answers() { [ -S "$SOCKET" ] && "$DOCKER" info >/dev/null 2>&1; }

install_engine() {
  if [ -x /usr/sbin/dockerd ] && [ -x "$DOCKER" ]; then return 0; fi
  log "installing docker.io from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker.io iptables >/dev/null
}

start() {
  if answers; then log "engine already answers on $SOCKET"; return 0; fi
  install_engine
  mkdir -p "$STATE_DIR" "$DATA_ROOT"
  rm -f "$SOCKET" "$PIDFILE"
  log "starting dockerd (data root $DATA_ROOT, log $LOG)"
  setsid /usr/sbin/dockerd \
    --host "unix://$SOCKET" \
    --data-root "$DATA_ROOT" \
    --exec-root "$STATE_DIR/exec" \
    --pidfile "$PIDFILE" \
    >"$LOG" 2>&1 </dev/null &
  for _ in $(seq 1 120); do
    if answers; then log "engine ready"; return 0; fi
    sleep 0.5
  done
  log "dockerd did not answer within 60 s; last lines of $LOG:"
  tail -n 20 "$LOG" >&2 || true
  return 1
}

stop() {
  if [ ! -f "$PIDFILE" ]; then log "no engine started by siteops is running"; return 0; fi
  local pid
  pid=$(cat "$PIDFILE")
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping dockerd (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 60); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "dockerd ignored SIGTERM for 30 s; killing it"
      kill -KILL "$pid" || true
    fi
  fi
  # containerd is a child of dockerd; make sure no shim outlives the engine.
  pkill -f "containerd-shim.*$STATE_DIR" 2>/dev/null || true
  rm -f "$PIDFILE" "$SOCKET"
  log "engine stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if answers; then echo "running ($DOCKER_HOST)"; else echo "stopped"; exit 1; fi ;;
  env) echo "export DOCKER_HOST=$DOCKER_HOST" ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
