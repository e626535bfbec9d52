#!/usr/bin/env bash
# Run the docker-compose topology on one machine without Docker, from Debian
# packages (redis-server, nginx, curl), everything bound to 127.0.0.1:
#
#   redis-server :6390 (AOF)  <-  switchboard nodes :3001 :3002 :3003  <-  nginx :8080
#
# Usage: deploy/local-cluster.sh COMMAND [ARG]
#   up               build (unless SWITCHBOARD_BIN is set) and start everything,
#                    wait until every node's /readyz and nginx answer, write the
#                    state file and print URLs and PIDs
#   down             stop everything (nodes get SIGTERM and their drain time)
#                    and delete the work dir (SB_LOCAL_KEEP=1 keeps it)
#   status           show each process and its health; exit 0 only if all are up
#   env              print the state file (KEY=VALUE lines)
#   restart-node N   SIGTERM node N, wait for it to exit (drain), start it again
#                    with the same environment, wait for /readyz
#   stop-node N      SIGTERM node N and wait for it to exit
#   kill-node N      SIGKILL node N (a crash: its sockets are left to the lease)
#   start-node N     start node N again (after stop-node / kill-node)
#   stop-redis | start-redis | restart-redis
#                    Redis outage tests; the AOF in the work dir survives
#   logs [N|redis|nginx]  print the path of a log file (all when no argument)
#
# Environment (defaults in brackets):
#   SWITCHBOARD_BIN       gateway binary [built from ./cmd/switchboard into the work dir]
#   SB_LOCAL_DIR          work dir: state, logs, redis data, nginx prefix
#                         [${TMPDIR:-/tmp}/switchboard-cluster-<uid>]
#   SB_LOCAL_NODES        number of gateway nodes [3]
#   SB_LOCAL_NODE_PORT    port of node 1; node N listens on NODE_PORT+N-1 [3001]
#   SB_LOCAL_REDIS_PORT   [6390]
#   SB_LOCAL_NGINX_PORT   [8080]
#   SB_LOCAL_WAIT         seconds to wait for a component to become ready [60]
#   SB_LOCAL_KEEP         1: `down` keeps the work dir (logs, AOF) [0]
#   SWITCHBOARD_*         passed to every node as given to `up` (recorded, so
#                         restarts use the same values), except ADDR, NODE_ID
#                         and the Redis location, which the script sets.
#                         With no SWITCHBOARD_JWT_* set the nodes use the
#                         binary's documented development key.
#
# State file (<work dir>/state.env): one KEY=VALUE per line, no quoting:
#   WORKDIR BIN NODES STOP_WAIT REDIS_PID REDIS_PORT REDIS_URL
#   NODE_<n>_PID NODE_<n>_PORT NODE_<n>_URL NODE_<n>_ID NODE_<n>_LOG
#   NGINX_PID NGINX_PORT NGINX_URL SOCKET_IO_URL
set -euo pipefail
# No job control, even under `bash -m`: background children must stay in this
# script's process group so that setsid(1) execs in place and the PID we
# record is the process itself (a group leader would make setsid fork).
set +m

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
HOST=127.0.0.1

WORKDIR=${SB_LOCAL_DIR:-${TMPDIR:-/tmp}/switchboard-cluster-$(id -u)}
STATE=$WORKDIR/state.env
NODE_ENV_FILE=$WORKDIR/node.env
WAIT=${SB_LOCAL_WAIT:-60}

log() { printf '[local-cluster] %s\n' "$*" >&2; }
die() { printf '[local-cluster] ERROR: %s\n' "$*" >&2; exit 1; }

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

# ---------------------------------------------------------------- state file

declare -A S=()

load_state() {
  S=()
  [[ -f $STATE ]] || return 1
  local k v
  while IFS='=' read -r k v; do
    [[ -n $k && $k != \#* ]] && S[$k]=$v
  done < "$STATE"
  return 0
}

# state_set KEY VALUE: rewrite the file atomically.
state_set() {
  local k=$1 v=$2 tmp
  S[$k]=$v
  tmp=$(mktemp "$WORKDIR/.state.XXXXXX")
  { [[ -f $STATE ]] && grep -v "^$k=" "$STATE" || true; printf '%s=%s\n' "$k" "$v"; } > "$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$STATE"
}

lock_workdir() {
  exec 9>"$WORKDIR/.lock"
  flock -w 60 9 || die "another local-cluster.sh command holds $WORKDIR/.lock"
}

# ---------------------------------------------------------------- processes

# alive PID: running and not a zombie.
alive() {
  local pid=$1 stat
  [[ -n $pid ]] && is_uint "$pid" || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# ours PID PATTERN: alive and its command line contains PATTERN (guards
# against a PID reused by an unrelated process since the state was written).
ours() {
  local pid=$1 pat=$2 cmd
  alive "$pid" || return 1
  cmd=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *"$pat"* ]]
}

# stop_pid NAME PID PATTERN SIGNAL TIMEOUT: signal, wait for exit, SIGKILL
# after TIMEOUT seconds. Prints the seconds it took on stdout.
stop_pid() {
  local name=$1 pid=$2 pat=$3 sig=$4 timeout=$5 start=$SECONDS
  if ! ours "$pid" "$pat"; then
    echo 0
    return 0
  fi
  kill "-$sig" "$pid" 2>/dev/null || true
  while alive "$pid"; do
    if (( SECONDS - start >= timeout )); then
      log "$name (pid $pid) still running after ${timeout}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      local k=0
      while alive "$pid" && (( k++ < 50 )); do sleep 0.1; done
      break
    fi
    sleep 0.1
  done
  # Reap it if it is our own child (restart-node within one invocation).
  wait "$pid" 2>/dev/null || true
  echo $((SECONDS - start))
}

# launch LOG CMD...: start CMD in its own session (so it outlives this script
# and a Ctrl-C here), stdin from /dev/null, output appended to LOG, and no
# other inherited file descriptor (a caller waiting for EOF on a pipe must not
# wait for the cluster). Sets LAUNCHED_PID; the PID is CMD's own.
launch() {
  local logf=$1
  shift
  (
    exec </dev/null >>"$logf" 2>&1
    for fd in /proc/"$BASHPID"/fd/*; do
      fd=${fd##*/}
      if is_uint "$fd" && (( fd > 2 )); then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    exec setsid "$@"
  ) &
  LAUNCHED_PID=$!
}

port_in_use() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

wait_port_free() {
  local port=$1 what=$2 start=$SECONDS
  while port_in_use "$port"; do
    (( SECONDS - start < WAIT )) || die "port $port of $what still in use after ${WAIT}s"
    sleep 0.1
  done
}

# wait_until WHAT PID LOG CMD...: poll CMD until it succeeds; fail clearly when
# the process died or WAIT seconds passed.
wait_until() {
  local what=$1 pid=$2 logf=$3
  shift 3
  local start=$SECONDS
  until "$@" >/dev/null 2>&1; do
    if ! alive "$pid"; then
      log "$what (pid $pid) exited during startup; last lines of $logf:"
      tail -n 30 "$logf" >&2 2>/dev/null || true
      die "$what failed to start"
    fi
    if (( SECONDS - start >= WAIT )); then
      log "last lines of $logf:"
      tail -n 30 "$logf" >&2 2>/dev/null || true
      die "timed out after ${WAIT}s waiting for $what"
    fi
    sleep 0.2
  done
}

http_ok() { curl -fs -o /dev/null --max-time 2 "$1"; }

redis_ping() { [[ $(redis-cli -h "$HOST" -p "$1" ping 2>/dev/null) == PONG ]]; }

# go_duration_secs "20s" -> 20 (ceil). Accepts Go duration strings; empty
# output when it cannot parse.
go_duration_secs() {
  awk -v d="$1" 'BEGIN {
    s = d; total = 0
    if (s == "") exit 1
    while (length(s) > 0) {
      if (!match(s, /^[0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h)/)) exit 1
      tok = substr(s, 1, RLENGTH); s = substr(s, RLENGTH + 1)
      match(tok, /^[0-9]+(\.[0-9]+)?/)
      n = substr(tok, 1, RLENGTH) + 0; u = substr(tok, RLENGTH + 1)
      f = 1
      if (u == "h") f = 3600; else if (u == "m") f = 60; else if (u == "ms") f = 0.001
      else if (u == "us") f = 0.000001; else if (u == "ns") f = 0.000000001
      total += n * f
    }
    c = int(total); if (c < total) c++
    print c
  }' 2>/dev/null || true
}

need() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || die "$c not found on PATH (Debian: apt-get install -y ${PKG[$c]:-$c})"
  done
}
declare -A PKG=([redis-server]=redis-server [redis-cli]=redis-tools [nginx]=nginx [curl]=curl [flock]=util-linux [setsid]=util-linux [go]=golang)

# ---------------------------------------------------------------- components

start_redis() {
  local port=${S[REDIS_PORT]} logf=$WORKDIR/logs/redis.log pid
  port_in_use "$port" && die "port $port (redis) is in use; set SB_LOCAL_REDIS_PORT"
  mkdir -p "$WORKDIR/redis"
  printf '=== %s starting redis-server on %s:%s\n' "$(date -u +%FT%TZ)" "$HOST" "$port" >> "$logf"
  # AOF with fsync every second, like docker-compose.yml and redis.yaml; no RDB
  # snapshots (the AOF is the persistence); never evict state.
  launch "$logf" redis-server --bind "$HOST" --port "$port" --dir "$WORKDIR/redis" \
    --appendonly yes --appendfsync everysec --save '' \
    --maxmemory-policy noeviction --daemonize no --protected-mode yes
  pid=$LAUNCHED_PID
  state_set REDIS_PID "$pid"
  wait_until "redis-server on port $port" "$pid" "$logf" redis_ping "$port"
  log "redis-server ready: pid $pid, ${S[REDIS_URL]}"
}

stop_redis() {
  local took
  took=$(stop_pid redis "${S[REDIS_PID]:-}" redis-server TERM 15)
  log "redis stopped (${took}s)"
}

start_node() {
  local n=$1
  local port=$(( S[NODE_PORT_BASE] + n - 1 )) id="local-$n" logf=$WORKDIR/logs/node-$n.log pid
  local -a envs=()
  port_in_use "$port" && die "port $port (node $n) is in use; set SB_LOCAL_NODE_PORT"
  [[ -x ${S[BIN]} ]] || die "gateway binary ${S[BIN]} is missing or not executable"
  mapfile -d '' -t envs < "$NODE_ENV_FILE"
  printf '=== %s starting node %s (%s) on %s:%s\n' "$(date -u +%FT%TZ)" "$n" "$id" "$HOST" "$port" >> "$logf"
  # env -i: the node sees exactly the environment recorded by `up`, whoever
  # restarts it later. Later assignments win over the recorded ones.
  launch "$logf" env -i "${envs[@]}" \
    SWITCHBOARD_ADDR="$HOST:$port" \
    SWITCHBOARD_NODE_ID="$id" \
    SWITCHBOARD_REDIS_URL="${S[REDIS_URL]}" \
    "${S[BIN]}"
  pid=$LAUNCHED_PID
  state_set "NODE_${n}_BIN" "${S[BIN]}"
  state_set "NODE_${n}_PID" "$pid"
  state_set "NODE_${n}_PORT" "$port"
  state_set "NODE_${n}_URL" "http://$HOST:$port"
  state_set "NODE_${n}_ID" "$id"
  state_set "NODE_${n}_LOG" "$logf"
  local t0=$SECONDS
  wait_until "node $n /readyz on port $port" "$pid" "$logf" http_ok "http://$HOST:$port/readyz"
  log "node $n ready: pid $pid, http://$HOST:$port ($((SECONDS - t0))s)"
}

# stop_node N SIGNAL: prints seconds taken on stdout.
stop_node() {
  local n=$1 sig=$2 pid=${S[NODE_${1}_PID]:-} bin=${S[NODE_${1}_BIN]:-${S[BIN]}} took
  if [[ $sig == KILL ]]; then
    took=$(stop_pid "node $n" "$pid" "$bin" KILL 5)
  else
    took=$(stop_pid "node $n" "$pid" "$bin" TERM "${S[STOP_WAIT]}")
  fi
  [[ -n ${S[NODE_${n}_PORT]:-} ]] && wait_port_free "${S[NODE_${n}_PORT]}" "node $n"
  echo "$took"
}

start_nginx() {
  local port=${S[NGINX_PORT]} dir=$WORKDIR/nginx logf=$WORKDIR/logs/nginx.out
  local conf=$dir/nginx.conf tmpl user_line servers="" n pid
  port_in_use "$port" && die "port $port (nginx) is in use; set SB_LOCAL_NGINX_PORT"
  mkdir -p "$dir/tmp"
  cp "$SCRIPT_DIR/nginx/switchboard-maps.conf" "$SCRIPT_DIR/nginx/switchboard-locations.conf" "$dir/"
  if (( EUID == 0 )); then
    # The master stays root; workers drop to nobody (they only read the
    # config and use the temp dirs the master creates for them).
    user_line="user nobody $(id -gn nobody 2>/dev/null || echo nogroup);"
  else
    user_line="# not root: the workers run as $(id -un)"
  fi
  for (( n = 1; n <= ${S[NODES]}; n++ )); do
    servers+="        server $HOST:$(( ${S[NODE_PORT_BASE]} + n - 1 )) max_fails=0;"$'\n'
  done
  tmpl=$(<"$SCRIPT_DIR/nginx/switchboard-local.conf.tmpl")
  tmpl=${tmpl//@@USER_LINE@@/$user_line}
  tmpl=${tmpl//@@LISTEN@@/$HOST:$port}
  tmpl=${tmpl//@@UPSTREAM_SERVERS@@/${servers%$'\n'}}
  printf '%s\n' "$tmpl" > "$conf"
  local -a args=(-p "$WORKDIR/" -c "$conf" -e "$WORKDIR/logs/nginx-error.log")
  nginx -t -q "${args[@]}" >>"$logf" 2>&1 || { tail -n 20 "$logf" >&2; die "nginx -t failed for $conf"; }
  launch "$logf" nginx "${args[@]}"
  pid=$LAUNCHED_PID
  state_set NGINX_PID "$pid"
  wait_until "nginx on port $port" "$pid" "$WORKDIR/logs/nginx-error.log" http_ok "http://$HOST:$port/nginx-health"
  wait_until "a node's /readyz through nginx" "$pid" "$WORKDIR/logs/nginx-error.log" http_ok "http://$HOST:$port/readyz"
  log "nginx ready: pid $pid, ${S[NGINX_URL]}"
}

stop_nginx() {
  local took
  # SIGTERM is nginx's fast shutdown: it does not wait for websockets (SIGQUIT
  # would, without bound).
  took=$(stop_pid nginx "${S[NGINX_PID]:-}" "nginx" TERM 10)
  log "nginx stopped (${took}s)"
}

any_alive() {
  local k
  for k in "${!S[@]}"; do
    [[ $k == *_PID ]] && alive "${S[$k]}" && return 0
  done
  return 1
}

stop_all() {
  local n pids=() took
  [[ -n ${S[NGINX_PID]:-} ]] && stop_nginx
  # All nodes drain in parallel; each gets its drain timeout + margin.
  for (( n = 1; n <= ${S[NODES]:-0}; n++ )); do
    [[ -n ${S[NODE_${n}_PID]:-} ]] || continue
    ( took=$(stop_node "$n" TERM); log "node $n stopped (${took}s)" ) &
    pids+=($!)
  done
  for n in "${pids[@]}"; do wait "$n" || true; done
  [[ -n ${S[REDIS_PID]:-} ]] && stop_redis
  return 0
}

# ---------------------------------------------------------------- commands

node_arg() {
  local n=${1:-}
  is_uint "$n" && (( n >= 1 && n <= ${S[NODES]} )) || die "node number must be 1..${S[NODES]}, got '${n}'"
  echo "$n"
}

require_state() {
  [[ -d $WORKDIR ]] && load_state || die "no local cluster in $WORKDIR (run: $0 up)"
}

cmd_up() {
  local nodes=${SB_LOCAL_NODES:-3} node_port=${SB_LOCAL_NODE_PORT:-3001}
  local redis_port=${SB_LOCAL_REDIS_PORT:-6390} nginx_port=${SB_LOCAL_NGINX_PORT:-8080}
  local p n drain
  for p in "$nodes" "$node_port" "$redis_port" "$nginx_port" "$WAIT"; do
    is_uint "$p" || die "ports, node count and SB_LOCAL_WAIT must be numbers (got '$p')"
  done
  (( nodes >= 1 && nodes <= 50 )) || die "SB_LOCAL_NODES must be 1..50"
  need redis-server redis-cli nginx curl flock setsid awk
  [[ -n ${SWITCHBOARD_BIN:-} ]] || need go

  if [[ -d $WORKDIR ]]; then
    if load_state && any_alive; then
      die "a local cluster is already running from $WORKDIR (see: $0 status; stop it with: $0 down)"
    fi
    log "removing stale work dir $WORKDIR"
    rm -rf -- "$WORKDIR"
  fi
  for (( n = 0; n < nodes; n++ )); do
    port_in_use $(( node_port + n )) && die "port $(( node_port + n )) (node $(( n + 1 ))) is in use; set SB_LOCAL_NODE_PORT"
  done
  port_in_use "$redis_port" && die "port $redis_port (redis) is in use; set SB_LOCAL_REDIS_PORT"
  port_in_use "$nginx_port" && die "port $nginx_port (nginx) is in use; set SB_LOCAL_NGINX_PORT"

  # 0755 so that nginx workers (nobody, when run as root) can reach their
  # temp dirs; node.env, which may hold a secret, is 0600.
  umask 022
  mkdir -p "$WORKDIR/logs" "$WORKDIR/bin"
  : > "$STATE"
  lock_workdir

  # From here on, a failure stops whatever was started and keeps the logs.
  UP_DONE=0
  # shellcheck disable=SC2154 # rc is assigned inside the trap
  trap 'rc=$?; if [[ ${UP_DONE:-1} == 0 ]]; then log "up failed; stopping what was started (logs kept in $WORKDIR/logs)"; stop_all || true; fi; exit $rc' EXIT
  trap 'exit 130' INT TERM

  drain=$(go_duration_secs "${SWITCHBOARD_DRAIN_TIMEOUT:-20s}")
  [[ -n $drain ]] || die "cannot parse SWITCHBOARD_DRAIN_TIMEOUT='${SWITCHBOARD_DRAIN_TIMEOUT}'"

  state_set WORKDIR "$WORKDIR"
  state_set NODES "$nodes"
  state_set NODE_PORT_BASE "$node_port"
  state_set STOP_WAIT $(( drain + 10 ))
  state_set REDIS_PORT "$redis_port"
  state_set REDIS_URL "redis://$HOST:$redis_port/0"
  state_set NGINX_PORT "$nginx_port"
  state_set NGINX_URL "http://$HOST:$nginx_port"
  state_set SOCKET_IO_URL "http://$HOST:$nginx_port/socket.io/"

  if [[ -n ${SWITCHBOARD_BIN:-} ]]; then
    [[ -x $SWITCHBOARD_BIN ]] || die "SWITCHBOARD_BIN=$SWITCHBOARD_BIN is not an executable file"
    state_set BIN "$(cd "$(dirname "$SWITCHBOARD_BIN")" && pwd)/$(basename "$SWITCHBOARD_BIN")"
  else
    log "building ./cmd/switchboard -> $WORKDIR/bin/switchboard"
    (cd "$REPO_ROOT" && go build -o "$WORKDIR/bin/switchboard" ./cmd/switchboard) \
      || die "go build ./cmd/switchboard failed (or set SWITCHBOARD_BIN to a built binary)"
    state_set BIN "$WORKDIR/bin/switchboard"
  fi

  # The nodes' environment, recorded once: SWITCHBOARD_* settings and Go
  # runtime knobs of this shell, minus what the script sets per node.
  ( umask 077
    env -0 | grep -zE '^(SWITCHBOARD_[A-Z0-9_]+|PATH|HOME|TZ|LANG|GODEBUG|GOGC|GOMEMLIMIT|GOMAXPROCS|GOTRACEBACK|GOCOVERDIR|SSL_CERT_FILE|SSL_CERT_DIR)=' \
      | grep -zvE '^SWITCHBOARD_(ADDR|NODE_ID|REDIS_URL|REDIS_CLUSTER_ADDRS|REDIS_SENTINEL_ADDRS|REDIS_SENTINEL_MASTER|BIN)=' \
      > "$NODE_ENV_FILE" || true )
  if [[ -z ${SWITCHBOARD_JWT_SECRET:-}${SWITCHBOARD_JWT_PUBLIC_KEY:-}${SWITCHBOARD_JWT_JWKS:-} ]]; then
    state_set JWT development-key
    log "no SWITCHBOARD_JWT_* set: the nodes use the binary's insecure development key"
  else
    state_set JWT configured
  fi

  start_redis
  for (( n = 1; n <= nodes; n++ )); do start_node "$n"; done
  start_nginx

  UP_DONE=1
  trap - EXIT INT TERM
  echo
  cmd_status || true
  echo
  echo "Socket.IO: ${S[SOCKET_IO_URL]}   REST: ${S[NGINX_URL]}/api/   Redis: ${S[REDIS_URL]}"
  echo "State:     $STATE"
  echo "Stop with: $0 down"
}

cmd_down() {
  if [[ ! -d $WORKDIR ]]; then
    log "no local cluster in $WORKDIR"
    return 0
  fi
  load_state || true
  lock_workdir
  stop_all
  if [[ ${SB_LOCAL_KEEP:-0} == 1 ]]; then
    rm -f "$WORKDIR/.lock"
    log "stopped; work dir kept: $WORKDIR"
  else
    rm -rf -- "$WORKDIR"
    log "stopped; removed $WORKDIR"
  fi
}

cmd_status() {
  require_state
  local ok=0 n pid st
  printf '%-8s %-8s %-9s %s\n' COMPONENT PID STATE ADDRESS
  pid=${S[REDIS_PID]:-}
  if ours "$pid" redis-server && redis_ping "${S[REDIS_PORT]}"; then st=up; else st=down; ok=1; fi
  printf '%-8s %-8s %-9s %s\n' redis "${pid:--}" "$st" "${S[REDIS_URL]}"
  for (( n = 1; n <= ${S[NODES]}; n++ )); do
    pid=${S[NODE_${n}_PID]:-}
    if ! ours "$pid" "${S[NODE_${n}_BIN]:-${S[BIN]}}"; then st=down; ok=1
    elif http_ok "${S[NODE_${n}_URL]}/readyz"; then st=ready
    elif http_ok "${S[NODE_${n}_URL]}/healthz"; then st=unready; ok=1
    else st=starting; ok=1; fi
    printf '%-8s %-8s %-9s %s  (log %s)\n' "node-$n" "${pid:--}" "$st" "${S[NODE_${n}_URL]:-}" "${S[NODE_${n}_LOG]:-}"
  done
  pid=${S[NGINX_PID]:-}
  if ours "$pid" nginx && http_ok "${S[NGINX_URL]}/nginx-health"; then st=up; else st=down; ok=1; fi
  printf '%-8s %-8s %-9s %s\n' nginx "${pid:--}" "$st" "${S[NGINX_URL]}"
  return $ok
}

cmd_restart_node() {
  require_state
  local n took t0 old
  n=$(node_arg "${1:-}")
  old=${S[NODE_${n}_PID]:-}
  lock_workdir
  # SWITCHBOARD_BIN given to restart-node: the node comes back with that
  # binary (rolling upgrade); the others keep theirs.
  if [[ -n ${SWITCHBOARD_BIN:-} ]]; then
    [[ -x $SWITCHBOARD_BIN ]] || die "SWITCHBOARD_BIN=$SWITCHBOARD_BIN is not executable"
  fi
  log "node $n: SIGTERM (pid ${old:-none}), waiting up to ${S[STOP_WAIT]}s for its drain"
  took=$(stop_node "$n" TERM)
  log "node $n: exited after ${took}s"
  if [[ -n ${SWITCHBOARD_BIN:-} ]]; then
    state_set BIN "$(cd "$(dirname "$SWITCHBOARD_BIN")" && pwd)/$(basename "$SWITCHBOARD_BIN")"
  fi
  t0=$SECONDS
  start_node "$n"
  log "node $n: restarted, pid ${old:-none} -> ${S[NODE_${n}_PID]}, stopped in ${took}s, ready in $((SECONDS - t0))s"
}

cmd_stop_node() {
  require_state
  local n took sig=$2
  n=$(node_arg "${1:-}")
  lock_workdir
  took=$(stop_node "$n" "$sig")
  log "node $n: stopped with SIG$sig after ${took}s"
}

cmd_start_node() {
  require_state
  local n
  n=$(node_arg "${1:-}")
  lock_workdir
  ours "${S[NODE_${n}_PID]:-}" "${S[NODE_${n}_BIN]:-${S[BIN]}}" && die "node $n is already running (pid ${S[NODE_${n}_PID]})"
  start_node "$n"
}

cmd_redis() {
  require_state
  lock_workdir
  case $1 in
    stop) stop_redis ;;
    start)
      ours "${S[REDIS_PID]:-}" redis-server && die "redis is already running (pid ${S[REDIS_PID]})"
      start_redis ;;
    restart) stop_redis; start_redis ;;
  esac
}

cmd_logs() {
  require_state
  case ${1:-} in
    "") ls -1 "$WORKDIR"/logs/* ;;
    redis) echo "$WORKDIR/logs/redis.log" ;;
    nginx) echo "$WORKDIR/logs/nginx-error.log"; echo "$WORKDIR/logs/nginx-access.log" ;;
    *) local n
       n=$(node_arg "$1")
       echo "${S[NODE_${n}_LOG]}" ;;
  esac
}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

# Sockets per process: raise the soft file limit to the hard one for
# everything started from here (best effort).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cmd=${1:-}
[[ $# -gt 0 ]] && shift
case $cmd in
  up)            cmd_up ;;
  down)          cmd_down ;;
  status)        cmd_status ;;
  env)           require_state; cat "$STATE" ;;
  restart-node)  cmd_restart_node "${1:-}" ;;
  stop-node)     cmd_stop_node "${1:-}" TERM ;;
  kill-node)     cmd_stop_node "${1:-}" KILL ;;
  start-node)    cmd_start_node "${1:-}" ;;
  stop-redis)    cmd_redis stop ;;
  start-redis)   cmd_redis start ;;
  restart-redis) cmd_redis restart ;;
  logs)          cmd_logs "${1:-}" ;;
  -h|--help|help) usage ;;
  *)             usage >&2; exit 2 ;;
esac
