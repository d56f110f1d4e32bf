#!/usr/bin/env bash
# Starts and stops a throwaway one-node Ceph RADOS Gateway (S3) on loopback.
#
#   test/services/rgw.sh start <dir>   # prints the path of <dir>/env last
#   test/services/rgw.sh stop <dir>    # idempotent
#
# See test/services/README.md for the interface, ports and settings.
set -euo pipefail

PROG=rgw.sh
MARKER=.upfront-rgw        # marks a directory as made by this script
RGW_NAME=client.rgw.upfront

usage() {
  echo "usage: $0 start|stop <dir>" >&2
  exit 2
}

# Messages go to fd 9, a copy of the script's stderr, so that they reach the
# caller even from a trap that runs while a command's output is redirected.
exec 9>&2
log() { echo "$PROG: $*" >&9; }
die() {
  log "$*"
  exit 1
}

[ $# -eq 2 ] || usage
cmd=$1
[ -n "$2" ] || usage
dir=$(realpath -m -- "$2")
case "$dir" in
  / | /bin | /boot | /dev | /etc | /home | /lib* | /proc | /root | /run | /sbin | /sys | /tmp | /usr | /var | /work)
    die "refusing to use $dir as a throwaway state directory" ;;
esac
case "$dir" in
  *[[:space:]]*) die "the state directory's path must not contain spaces: '$dir'" ;;
esac
conf=$dir/ceph.conf

# ---------------------------------------------------------------- processes

# Pids of the live processes started with "-c <dir>/ceph.conf": the daemons
# (whose pid files normally name them) and any stray ceph / radosgw-admin
# client left from an interrupted start.
cluster_pids() {
  local pid f arg
  for f in "$dir"/run/*.pid; do
    [ -f "$f" ] || continue
    pid=$(tr -dc 0-9 2>/dev/null <"$f" || true)
    [ -n "$pid" ] && uses_conf "$pid" && echo "$pid"
  done
  for f in /proc/[0-9]*/cmdline; do
    pid=${f#/proc/}
    pid=${pid%/cmdline}
    [ "$pid" != "$$" ] || continue
    while IFS= read -r -d '' arg; do
      if [ "$arg" = "$conf" ]; then
        echo "$pid"
        break
      fi
    done 2>/dev/null <"$f" || true
  done
}

# Whether process $1 is alive and was started with our ceph.conf (a pid in a
# stale pid file may belong to someone else by now).
uses_conf() {
  local arg
  [ -r "/proc/$1/cmdline" ] || return 1
  while IFS= read -r -d '' arg; do
    [ "$arg" = "$conf" ] && return 0
  done 2>/dev/null <"/proc/$1/cmdline"
  return 1
}

live_pids() {
  cluster_pids | sort -un | while read -r pid; do
    uses_conf "$pid" && echo "$pid"
  done
  return 0
}

# Waits up to $1 tenths of a second for the processes that "$2" lists to be
# gone; fails if some are left.
wait_gone() {
  local i
  for ((i = 0; i < $1; i++)); do
    [ -n "$($2)" ] || return 0
    sleep 0.1
  done
  [ -z "$($2)" ]
}

# The live pid in the pid file of daemon $1 (mon.a, osd.0, client.rgw...).
daemon_pid() {
  local pid
  pid=$(tr -dc 0-9 2>/dev/null <"$dir/run/$1.pid" || true)
  [ -n "$pid" ] && uses_conf "$pid" && echo "$pid"
  return 0
}

# Stages of a stop: radosgw talks to the OSD while it shuts down, and an
# OSD told to stop tells the monitor and waits up to 5 s for its answer.
stage1_pids() { live_pids | grep -vxF -e "$(daemon_pid osd.0)" -e "$(daemon_pid mon.a)" || true; }
stage2_pids() { live_pids | grep -vxF -e "$(daemon_pid mon.a)" || true; }

# TERM to radosgw (and any stray client), then to the OSD, then to the
# monitor, each given RGW_STOP_GRACE seconds (default 5) to exit; then KILL
# what is left and wait for it to be gone.
kill_cluster() {
  local pids stage grace=$((${RGW_STOP_GRACE:-5} * 10))
  for stage in stage1_pids stage2_pids live_pids; do
    pids=$($stage)
    [ -n "$pids" ] || continue
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    wait_gone "$grace" "$stage" || true
  done
  pids=$(live_pids)
  [ -n "$pids" ] || return 0
  log "still running after TERM, sending KILL to: ${pids//$'\n'/ }"
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
  wait_gone 100 live_pids && return 0
  pids=$(live_pids)
  log "could not stop: ${pids//$'\n'/ }"
  return 1
}

# ---------------------------------------------------------------------- stop

do_stop() {
  [ -e "$dir" ] || return 0
  [ -d "$dir" ] || die "$dir is not a directory"
  if [ ! -e "$dir/$MARKER" ]; then
    if [ -z "$(ls -A "$dir")" ]; then
      rmdir "$dir"
      return 0
    fi
    die "$dir was not made by $0 (no $MARKER in it): not touching it"
  fi
  kill_cluster || die "daemons of $dir did not exit; $dir left in place"
  rm -rf -- "$dir"
}

# --------------------------------------------------------------------- start

REGION=us-east-1
RGW_PORT=${RGW_PORT:-7480}
PORT_BASE=${RGW_CEPH_PORT_BASE:-7481}
MON_PORT=$PORT_BASE                 # mon, msgr2 only
OSD_PORT_MIN=$((PORT_BASE + 1))     # the OSD binds 4 ports in this range
OSD_PORT_MAX=$((PORT_BASE + 8))
ACCESS_KEY=${RGW_ACCESS_KEY:-upfront-test-access}
SECRET_KEY=${RGW_SECRET_KEY:-upfront-test-secret-0123456789abcdef}
BUCKET=${RGW_BUCKET:-upfront-test}
STORE=${RGW_STORE:-bluestore}
OSD_SIZE=${RGW_OSD_SIZE:-}
START_TIMEOUT=${RGW_START_TIMEOUT:-120}
ENDPOINT=http://127.0.0.1:$RGW_PORT
EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

check_settings() {
  local v
  for v in RGW_PORT PORT_BASE; do
    if ! [[ ${!v} =~ ^[0-9]+$ ]] || [ "${!v}" -lt 1024 ] || [ "${!v}" -gt 65000 ]; then
      die "${v/PORT_BASE/RGW_CEPH_PORT_BASE} must be a port number from 1024 to 65000, not '${!v}'"
    fi
  done
  [[ $BUCKET =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] || die "RGW_BUCKET '$BUCKET' is not a valid bucket name"
  { [ -n "$ACCESS_KEY" ] && [ -n "$SECRET_KEY" ]; } || die "RGW_ACCESS_KEY and RGW_SECRET_KEY must not be empty"
}

ensure_packages() {
  local missing=() tool pkg
  for tool in radosgw:radosgw radosgw-admin:radosgw ceph-mon:ceph-mon \
    monmaptool:ceph-base ceph-osd:ceph-osd ceph:ceph-common curl:curl; do
    pkg=${tool#*:}
    command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ "${#missing[@]}" -gt 0 ] || return 0
  [ "$(id -u)" -eq 0 ] || die "missing ${missing[*]}; install radosgw ceph-mon ceph-osd ceph-common curl (needs root)"
  log "installing radosgw ceph-mon ceph-osd ceph-common curl with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq radosgw ceph-mon ceph-osd ceph-common curl >&2
}

# Whether something accepts TCP connections on 127.0.0.1:$1.
port_busy() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

check_ports() {
  local p free=0
  for p in "$RGW_PORT" "$MON_PORT"; do
    if port_busy "$p"; then
      die "port $p on 127.0.0.1 is already in use (RGW_PORT=$RGW_PORT, mon $MON_PORT): stop what listens there, or choose other ports with RGW_PORT / RGW_CEPH_PORT_BASE"
    fi
  done
  [ "$RGW_PORT" -lt "$PORT_BASE" ] || [ "$RGW_PORT" -gt "$OSD_PORT_MAX" ] ||
    die "RGW_PORT=$RGW_PORT lies in the range the mon and OSD use ($PORT_BASE-$OSD_PORT_MAX): choose another RGW_PORT or RGW_CEPH_PORT_BASE"
  for ((p = OSD_PORT_MIN; p <= OSD_PORT_MAX; p++)); do
    port_busy "$p" || free=$((free + 1))
  done
  [ "$free" -ge 4 ] ||
    die "the OSD needs 4 free ports in $OSD_PORT_MIN-$OSD_PORT_MAX on 127.0.0.1, only $free are free (set RGW_CEPH_PORT_BASE to move the range)"
}

START_TIME=$SECONDS
# Exits when the start deadline has passed; $1 says what was awaited.
deadline_check() {
  [ $((START_TIME + START_TIMEOUT - SECONDS)) -gt 0 ] ||
    die "start did not finish within ${START_TIMEOUT}s (RGW_START_TIMEOUT) while $1"
}

# Seconds left before the start deadline (at least 1), at most $1.
left() {
  local l=$((START_TIME + START_TIMEOUT - SECONDS))
  [ "$l" -ge 1 ] || l=1
  if [ "$1" -lt "$l" ]; then l=$1; fi
  echo "$l"
}

# Runs "${@:2}" for at most $1 seconds, and not past the start deadline. In
# the background, so that an INT or TERM sent to this script is handled at
# once (timeout puts the command in a process group of its own).
bounded() {
  local t
  t=$(left "$1")
  shift
  timeout -k 2 "$t" "$@" 9>&- &
  wait $!
}

# must WHAT MAX LOG CMD...: runs CMD as bounded does, its input /dev/null and
# its output appended to <dir>/log/LOG, and stops the start with a message
# naming WHAT if it fails or times out.
must() {
  local what=$1 max=$2 out=$dir/log/$3 rc=0
  shift 3
  bounded "$max" "$@" </dev/null >>"$out" 2>&1 || rc=$?
  case "$rc" in
    0) return 0 ;;
    124 | 137) die "$what: timed out (limits: ${max}s for this step, ${START_TIMEOUT}s for the whole start, RGW_START_TIMEOUT)" ;;
    *) die "$what failed (exit status $rc)" ;;
  esac
}

cephc() {
  bounded 30 ceph -c "$conf" --connect-timeout 15 "$@" 2>>"$dir/log/ceph-cli.log"
}

# BlueStore in a sparse file: it grows as data is written and, as BlueStore
# cannot punch holes in a file and allocates next-fit, up to its full size
# over time; it is deleted by "stop". memstore keeps everything in RAM.
choose_store() {
  local free_kib
  case "$STORE" in
    bluestore | memstore) ;;
    *) die "RGW_STORE must be bluestore or memstore, not '$STORE'" ;;
  esac
  if [ -n "$OSD_SIZE" ]; then
    numfmt --from=iec "${OSD_SIZE%[Bb]}" >/dev/null 2>&1 ||
      die "RGW_OSD_SIZE must be a size such as 20G or 8192M, not '$OSD_SIZE'"
    return 0
  fi
  OSD_SIZE=$((20 * 1024)) # MiB
  [ "$STORE" = bluestore ] || return 0
  free_kib=$(df -Pk "$dir" | awk 'NR == 2 { print $4 }')
  if [ $((free_kib / 1024 - 2048)) -lt "$OSD_SIZE" ]; then
    OSD_SIZE=$((free_kib / 1024 - 2048))
    [ "$OSD_SIZE" -ge 2048 ] ||
      die "too little free disk for the OSD under $dir: $((free_kib / 1024)) MiB"
    log "only $((free_kib / 1024)) MiB free under $dir: the OSD gets $OSD_SIZE MiB instead of 20 GiB"
  fi
  OSD_SIZE=${OSD_SIZE}M
}

store_conf() {
  if [ "$STORE" = memstore ]; then
    echo "osd objectstore = memstore"
    echo "memstore device bytes = $(numfmt --from=iec "${OSD_SIZE%[Bb]}")"
  else
    echo "osd objectstore = bluestore"
    echo "bluestore block create = true"
    echo "bluestore block size = $(numfmt --from=iec "${OSD_SIZE%[Bb]}")"
  fi
}

write_conf() {
  cat >"$conf" <<EOF
# Throwaway one-node cluster made by test/services/rgw.sh; deleted by "stop".
[global]
fsid = $FSID
mon initial members = a
mon host = [v2:127.0.0.1:$MON_PORT]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv4 = true
ms bind ipv6 = false
ms bind msgr1 = false
ms bind port min = $OSD_PORT_MIN
ms bind port max = $OSD_PORT_MAX

# No cephx: crc is then the only wire mode, and radosgw asks for secure by
# default (it then waits forever with "get_initial_auth_request returned -13").
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
ms mon client mode = crc
ms mon service mode = crc
ms mon cluster mode = crc
ms client mode = crc
ms service mode = crc
ms cluster mode = crc

# Everything under the state directory, nothing in /etc, /var/lib, /var/log.
run dir = $dir/run
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
log file = $dir/log/\$name.log
mon cluster log file = $dir/log/cluster.log
crash dir = $dir/crash
keyring = $dir/keyring
log to stderr = false
err to stderr = false
debug ms = 0
debug rocksdb = 0/5

# One OSD, no mgr.
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mon pg warn min per osd = 0
mon warn on insecure global id reclaim = false
mon warn on insecure global id reclaim allowed = false

# Shared disks may be fuller than the default 5 % (crit) / 30 % (warn) free.
mon data avail crit = 1
mon data avail warn = 2

client mount timeout = 30
rados mon op timeout = 30

[mon]
mon data = $dir/mon/\$name
# Each pool that radosgw-admin and radosgw create waits for two proposals.
paxos propose interval = 0.1

[osd]
osd data = $dir/osd/\$name
osd memory target = 1073741824
$(store_conf)

[$RGW_NAME]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw data = $dir/rgw
rgw init timeout = 60
# Reclaim deleted and overwritten data within seconds rather than hours.
rgw gc obj min wait = 10
rgw gc processor period = 10
rgw gc processor max time = 10
EOF
}

# One signed S3 request with curl: s3 METHOD PATH [BODY]. Prints the HTTP
# status; the answer body goes to $dir/tmp/s3.out. curl 7.88 needs
# x-amz-content-sha256 sent explicitly for RGW to accept its signature.
s3() {
  local method=$1 path=$2 body=${3-} hash=$EMPTY_SHA256 args=()
  if [ $# -ge 3 ]; then
    hash=$(printf %s "$body" | sha256sum | cut -d' ' -f1)
    args=(--data-binary "$body" -H 'Content-Type: application/octet-stream')
  fi
  bounded 30 curl -sS --max-time 25 -o "$dir/tmp/s3.out" -w '%{http_code}' \
    -X "$method" --aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS_KEY:$SECRET_KEY" \
    -H "x-amz-content-sha256: $hash" "${args[@]}" "$ENDPOINT$path" 2>>"$dir/log/curl.log" || true
}

s3_expect() {
  local want=$1 got
  shift
  got=$(s3 "$@")
  [ "$got" = "$want" ] ||
    die "S3 $1 $2 answered ${got:-nothing} (wanted $want): $(head -c 500 "$dir/tmp/s3.out" 2>/dev/null)"
}

alive() { [ -n "$(daemon_pid "$1")" ]; }

# Notes in <dir>/log/start.log how long the start took to reach each step.
step() {
  printf '%6.2fs %s\n' "$(awk -v s="$START_NS" -v n="$(date +%s%N)" 'BEGIN { print (n - s) / 1e9 }')" "$1" \
    >>"$dir/log/start.log"
}

on_start_exit() {
  local rc=$?
  [ "$rc" -ne 0 ] || return 0
  set +e
  exec 2>&9
  case "$rc" in
    130 | 143) log "start interrupted after $((SECONDS - START_TIME))s; last lines of the logs in $dir/log:" ;;
    *) log "start failed after $((SECONDS - START_TIME))s; last lines of the logs in $dir/log:" ;;
  esac
  local f
  for f in "$dir"/log/mon.a.log "$dir"/log/osd.0.log "$dir"/log/$RGW_NAME.log \
    "$dir"/log/*.out "$dir"/log/ceph-cli.log "$dir"/log/curl.log; do
    [ -s "$f" ] || continue
    echo "----- $f" >&2
    tail -n 25 "$f" >&2
  done
  echo "-----" >&2
  kill_cluster
  if [ -n "${RGW_KEEP_ON_FAILURE:-}" ]; then
    log "kept $dir (RGW_KEEP_ON_FAILURE); remove it with: $0 stop $dir"
  else
    rm -rf -- "$dir"
  fi
  exit "$rc"
}

do_start() {
  check_settings
  ensure_packages
  START_TIME=$SECONDS
  START_NS=$(date +%s%N)

  if [ -e "$dir" ]; then
    [ -d "$dir" ] || die "$dir exists and is not a directory"
    if [ -e "$dir/$MARKER" ]; then
      local pids
      pids=$(live_pids)
      if [ -n "$pids" ]; then
        die "$dir holds a running cluster from this script (pids ${pids//$'\n'/ }); stop it first: $0 stop $dir"
      fi
      log "$dir holds a stopped cluster from an earlier run: removing it"
      rm -rf -- "$dir"
    elif [ -n "$(ls -A "$dir")" ]; then
      die "$dir exists, is not empty and was not made by $0: choose a new directory"
    fi
  fi
  check_ports

  mkdir -p "$dir"
  : >"$dir/$MARKER"
  trap on_start_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  choose_store
  mkdir -p "$dir"/{log,run,tmp,crash,rgw,mon/mon.a,osd/osd.0}
  export CEPH_CONF=$conf
  unset CEPH_ARGS CEPH_KEYRING
  FSID=$(cat /proc/sys/kernel/random/uuid)
  write_conf
  : >"$dir/keyring"
  step "ceph.conf written"

  # Monitor.
  must monmaptool 20 mkfs.out monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" \
    "$dir/tmp/monmap"
  must "ceph-mon --mkfs" 30 mkfs.out ceph-mon -c "$conf" -i a --mkfs --monmap "$dir/tmp/monmap"
  must "starting ceph-mon" 30 daemons.out ceph-mon -c "$conf" -i a
  until cephc mon stat >/dev/null; do
    deadline_check "waiting for ceph-mon"
    alive mon.a || die "ceph-mon exited"
    sleep 0.5
  done
  step "ceph-mon answers"

  # One OSD.
  local uuid id
  uuid=$(cat /proc/sys/kernel/random/uuid)
  id=$(cephc osd new "$uuid") || die "ceph osd new failed or timed out"
  [ "$id" = 0 ] || die "ceph osd new gave id '$id', wanted 0"
  must "ceph-osd --mkfs" 60 mkfs.out ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$uuid"
  step "ceph-osd --mkfs done"
  must "starting ceph-osd" 30 daemons.out ceph-osd -c "$conf" -i 0
  until cephc osd stat -f json | grep -q '"num_up_osds":1,'; do
    deadline_check "waiting for ceph-osd to be up"
    alive osd.0 || die "ceph-osd exited"
    sleep 0.5
  done
  step "ceph-osd up"

  # S3 user (radosgw-admin also creates the zone and its pools), then radosgw.
  must "radosgw-admin user create" 60 radosgw-admin.out radosgw-admin -c "$conf" user create --uid=upfront \
    --display-name="upfront tests" --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY"
  step "S3 user created"
  must "starting radosgw" 30 daemons.out radosgw -c "$conf" -n "$RGW_NAME"
  until [ "$(bounded 5 curl -s -o /dev/null -w '%{http_code}' "$ENDPOINT/" || true)" = 200 ]; do
    deadline_check "waiting for radosgw to answer on $ENDPOINT"
    alive "$RGW_NAME" || die "radosgw exited"
    sleep 0.3
  done
  step "radosgw answers"

  # Bucket, then warm-up: the data pool and the multipart pool are created
  # by the first write of each kind, which takes a second or two.
  local code
  code=$(s3 PUT "/$BUCKET")
  case "$code" in
    200) ;;
    409) grep -q BucketAlreadyOwnedByYou "$dir/tmp/s3.out" || die "bucket $BUCKET: 409 $(cat "$dir/tmp/s3.out")" ;;
    *) die "creating bucket $BUCKET answered ${code:-nothing}: $(head -c 500 "$dir/tmp/s3.out")" ;;
  esac
  step "bucket created"
  s3_expect 200 PUT "/$BUCKET/.rgw-sh-warm-up" "warm-up"
  s3_expect 204 DELETE "/$BUCKET/.rgw-sh-warm-up"
  s3_expect 200 POST "/$BUCKET/.rgw-sh-warm-up-multipart?uploads="
  local upload_id
  upload_id=$(sed -n 's:.*<UploadId>\([^<]*\)</UploadId>.*:\1:p' "$dir/tmp/s3.out")
  [ -n "$upload_id" ] || die "no UploadId in: $(cat "$dir/tmp/s3.out")"
  s3_expect 204 DELETE "/$BUCKET/.rgw-sh-warm-up-multipart?uploadId=$upload_id"

  {
    printf 'export AWS_ACCESS_KEY_ID=%q\n' "$ACCESS_KEY"
    printf 'export AWS_SECRET_ACCESS_KEY=%q\n' "$SECRET_KEY"
    printf 'export S3_ENDPOINT=%q\n' "$ENDPOINT"
    printf 'export S3_REGION=%q\n' "$REGION"
    printf 'export S3_BUCKET=%q\n' "$BUCKET"
    printf 'export S3_FORCE_PATH_STYLE=true\n'
  } >"$dir/env"
  rm -f "$dir/tmp/s3.out"
  step "warmed up: ready"
  trap - EXIT INT TERM
  log "S3 ready at $ENDPOINT, bucket $BUCKET, in $((SECONDS - START_TIME))s; logs in $dir/log; stop with: $0 stop $dir"
  echo "$dir/env"
}

case "$cmd" in
  start) do_start ;;
  stop) do_stop ;;
  *) usage ;;
esac
