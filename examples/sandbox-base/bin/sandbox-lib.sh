# SANDBOX STAND-IN (tests and demo only; NOT Kubernetes). Shared helpers for the stand-in tools
# of examples/sandbox-base: every call is appended as one JSON line to the node's journal.
SANDBOX_JOURNAL=${SANDBOX_JOURNAL:-/var/log/sealer-sandbox/journal.jsonl}
SANDBOX_STATE=${SANDBOX_STATE:-/var/lib/sealer-sandbox}

json_str() {
  printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/	/\\t/g' -e 's/\r/\\r/g' |
    awk 'BEGIN { ORS = "" } NR > 1 { print "\\n" } { print }' | sed -e 's/^/"/' -e 's/$/"/'
  # An empty value prints nothing through awk: make it "".
  [ -n "$1" ] || printf '""'
}

# journal TOOL ARGS... : {"ts":..,"tool":..,"argv":[..],"cwd":..,"user":..,"env":{..}}
journal() {
  tool=$1
  shift
  mkdir -p "$(dirname "$SANDBOX_JOURNAL")"
  argv=""
  for a in "$@"; do argv="$argv${argv:+,}$(json_str "$a")"; done
  envj=""
  for k in ${SEALER_ENV_KEYS-} KUBECONFIG; do
    eval "v=\${$k-}"
    eval "isset=\${$k+x}"
    [ -n "$isset" ] && envj="$envj${envj:+,}$(json_str "$k"):$(json_str "$v")"
  done
  line="{\"ts\":$(date +%s.%N),\"tool\":$(json_str "$tool"),\"argv\":[$argv],\"cwd\":$(json_str "$(pwd)"),\"uid\":$(id -u),\"env\":{$envj}}"
  # One write per line (O_APPEND) so concurrent calls never interleave.
  printf '%s\n' "$line" >>"$SANDBOX_JOURNAL"
}

die() {
  printf '%s\n' "$*" >&2
  exit 1
}

# The API server address from a kubeconfig: "http://host:port" and its bearer token.
kubeconfig_file() {
  for f in "${KUBECONFIG_ARG:-}" "${KUBECONFIG:-}" /etc/kubernetes/admin.conf /etc/kubernetes/kubelet.conf; do
    [ -n "$f" ] && [ -f "$f" ] && { printf '%s' "$f"; return 0; }
  done
  return 1
}

api_server() { sed -n 's/^ *server: *//p' "$1" | head -n1; }
api_token() { sed -n 's/^ *token: *//p' "$1" | head -n1; }

# curl to the stand-in API server, resolving names through /etc/hosts like the real tools.
api() {
  method=$1 url=$2
  shift 2
  curl -sS --max-time 10 -X "$method" -H 'Content-Type: application/json' "$@" "$url"
}

# PATH for daemons started here: the system's directories only (containerd finds the shim and
# runc there, where scripts/containerd.sh installs them).
SANDBOX_DAEMON_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# stop_pidfile FILE [SECONDS]: SIGTERM the process a pid file names, SIGKILL it after SECONDS
# (default 10), remove the file. Only that pid: other nodes' daemons share this pid namespace.
stop_pidfile() {
  [ -f "$1" ] || return 0
  pid=$(cat "$1")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null; do
      i=$((i + 1))
      if [ $i -ge $((${2:-10} * 10)) ]; then
        kill -9 "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.1
    done
  fi
  rm -f "$1"
}

# start_daemon PIDFILE LOG CMD...: starts CMD detached from the SSH session, records its pid.
start_daemon() {
  pidfile=$1 logfile=$2
  shift 2
  mkdir -p "$(dirname "$pidfile")" "$(dirname "$logfile")"
  PATH=$SANDBOX_DAEMON_PATH setsid nohup "$@" >>"$logfile" 2>&1 </dev/null &
  echo $! >"$pidfile"
}

# wait_until SECONDS WHAT LOG CMD...: runs CMD every 0.1 s until it succeeds; dies naming WHAT.
wait_until() {
  secs=$1 what=$2 logfile=$3
  shift 3
  i=0
  until "$@" >/dev/null 2>&1; do
    i=$((i + 1))
    [ $i -lt $((secs * 10)) ] || die "$what did not come up within ${secs}s; last lines of $logfile:
$(tail -n 5 "$logfile" 2>/dev/null)"
    sleep 0.1
  done
}
