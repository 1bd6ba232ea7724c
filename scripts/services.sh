#!/usr/bin/env bash
# Orthanc (with its DICOMweb plugin) and Redis for the PACS and queue tests, on loopback ports of
# their own, with throwaway storage in a temporary folder; both are stopped on exit (a trap).
#
#   scripts/services.sh <command...>   start them, export where they are, run the command, stop them
#   scripts/services.sh                start them, print where they are, wait for Ctrl-C
#
# Exports NODULESEG_TEST_ORTHANC_URL (Orthanc's root; DICOMweb under /dicom-web),
# NODULESEG_TEST_ORTHANC_USER / _PASSWORD (Orthanc requires them: the tests exercise basic auth)
# and NODULESEG_TEST_REDIS_URL. As root, missing packages are installed with apt-get; otherwise,
# or when a service fails to start, the command still runs without them and the tests that need
# them skip with a message.
set -euo pipefail
cd "$(dirname "$0")/.."

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
say() { echo "noduleseg services: $*" >&2; }
free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }

dicomweb_plugin=/usr/share/orthanc/plugins/libOrthancDicomWeb.so
missing=()
command -v Orthanc >/dev/null 2>&1 || missing+=(orthanc)
[ -f "$dicomweb_plugin" ] || missing+=(orthanc-dicomweb)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  say "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } >/dev/null 2>&1 || say "apt-get install ${missing[*]} failed"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/noduleseg-services.XXXXXX")
pids=()
stop() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_for() { # wait_for <seconds> <command...>: true once the command succeeds
  local until=$((SECONDS + $1)); shift
  while [ $SECONDS -lt $until ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  return 1
}

if command -v redis-server >/dev/null 2>&1; then
  port=$(free_port)
  # No persistence: the data lives and dies with this run.
  redis-server --bind 127.0.0.1 --port "$port" --dir "$tmp" --save '' --appendonly no --protected-mode yes \
    --logfile "$tmp/redis.log" --daemonize no &
  pids+=($!)
  if wait_for 10 redis-cli -p "$port" ping; then
    export NODULESEG_TEST_REDIS_URL="redis://127.0.0.1:$port"
  else
    say "redis-server did not start (log: $(tail -3 "$tmp/redis.log" 2>/dev/null | tr '\n' ' '))"
  fi
else
  say "redis-server is not installed (as root: apt-get install redis-server); the queue tests will skip"
fi

if command -v Orthanc >/dev/null 2>&1 && [ -f "$dicomweb_plugin" ]; then
  http=$(free_port); dicom=$(free_port)
  user=noduleseg; password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  mkdir -p "$tmp/orthanc-db"
  cat >"$tmp/orthanc.json" <<JSON
{
  "Name": "noduleseg-test",
  "StorageDirectory": "$tmp/orthanc-db",
  "IndexDirectory": "$tmp/orthanc-db",
  "HttpPort": $http,
  "DicomPort": $dicom,
  "DicomServerEnabled": false,
  "RemoteAccessAllowed": false,
  "AuthenticationEnabled": true,
  "RegisteredUsers": { "$user": "$password" },
  "HttpTimeout": 60,
  "ConcurrentJobs": 2,
  "StableAge": 1,
  "OverwriteInstances": false,
  "Plugins": [ "$dicomweb_plugin" ],
  "DicomWeb": { "Enable": true, "Root": "/dicom-web/", "EnableWado": false }
}
JSON
  chmod 600 "$tmp/orthanc.json"
  Orthanc "$tmp/orthanc.json" >"$tmp/orthanc.log" 2>&1 &
  pids+=($!)
  probe="fetch('http://127.0.0.1:$http/system',{headers:{authorization:'Basic '+Buffer.from('$user:$password').toString('base64')}}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
  if wait_for 30 node -e "$probe"; then
    export NODULESEG_TEST_ORTHANC_URL="http://127.0.0.1:$http" NODULESEG_TEST_ORTHANC_USER="$user" NODULESEG_TEST_ORTHANC_PASSWORD="$password"
  else
    say "Orthanc did not start (log: $(grep -E ' E[0-9]' "$tmp/orthanc.log" | tail -2 | tr '\n' ' '))"
  fi
else
  say "Orthanc or its DICOMweb plugin is not installed (as root: apt-get install orthanc orthanc-dicomweb); the PACS tests will skip"
fi

if [ $# -eq 0 ]; then
  echo "NODULESEG_TEST_ORTHANC_URL=${NODULESEG_TEST_ORTHANC_URL:-} (user ${NODULESEG_TEST_ORTHANC_USER:-}, password ${NODULESEG_TEST_ORTHANC_PASSWORD:-})"
  echo "NODULESEG_TEST_REDIS_URL=${NODULESEG_TEST_REDIS_URL:-}"
  say "running; Ctrl-C stops them and deletes their storage"
  while true; do sleep 3600 & wait $! || true; done
fi
set +e
"$@"
rc=$?
exit $rc
