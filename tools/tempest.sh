#!/usr/bin/env bash
# Run (part of) OpenStack Tempest against a live mCloud.
#
#   tools/tempest.sh --cloud-dir DIR [options] [--load-list FILE | REGEX...]
#   tools/tempest.sh --start [--cloud-dir DIR] [options] [--load-list FILE | REGEX...]
#
# DIR holds the clouds.yaml that `mcloud up` writes (clouds `mcloud` = admin,
# `mcloud-demo` = demo user). With --start the script starts
# `<repo>/.venv/bin/mcloud up --host 127.0.0.1 --port PORT --data-dir DIR`
# itself, waits for its "mCloud ready" line, and stops it (by PID) at the end.
#
# Options:
#   --cloud-dir DIR     where clouds.yaml is (with --start: the data dir;
#                       default with --start: a fresh .tempest/cloud-XXXX,
#                       removed after a run without failures)
#   --cloud NAME        admin cloud in clouds.yaml (default: mcloud)
#   --start             start `mcloud up` for the run
#   --port PORT         port for --start (default: a free one)
#   --load-list FILE    run the test ids in FILE (repeatable). Ids that moved
#                       in this Tempest are matched by [id-<uuid>] tag or by
#                       method name (tools/tempest/map_ids.py)
#   REGEX...            run tests matching any regex (default: tempest.api.identity)
#   --exclude REGEX     exclude tests matching REGEX (repeatable)
#   --services LIST     [service_available]: "identity" (default: identity
#                       only), "catalog" (every service in the token
#                       catalog), or e.g. "nova,neutron,glance,cinder"
#   --network-driver D  with --start: the network data plane of mcloud up
#                       ([network] driver: auto, ovn, fake; default auto)
#   --compute-driver D  with --start: the hypervisor driver of mcloud up
#                       ([compute] driver: auto, qemu, fake; default auto)
#   --compute-hosts N   with --start and the fake driver: N simulated compute hosts
#                       ([compute.fake] hosts; Tempest's multinode tests run from 2)
#   --image-file FILE   the bootable qcow2 Tempest's servers boot (nova; default:
#                       an empty qcow2, enough for the fake driver)
#   --conf-extra FILE   ini file merged over the generated tempest.conf
#   --concurrency N     test workers (default: 2)
#   --validation        [validation] on: Tempest logs in to its servers over SSH as root
#                       with its key pair, through a floating IP (the tiny image's dropbear);
#                       Tempest must then reach the provider network (see --run-prefix)
#   --run-prefix CMD    words put before `tempest run`, e.g. "nsenter --net=/run/netns/NS --"
#                       to run Tempest in a namespace that reaches the guests' floating IPs
#                       (the API must answer at the catalog's URLs there too)
#   --list              only print the test ids that would run
#   --plugin PIP_SPEC   also pip-install a Tempest plugin (repeatable), e.g.
#                       designate-tempest-plugin==0.30.0
#   --reinstall         rebuild the Tempest venv
#   (env MCLOUD_BIN overrides the mcloud executable used by --start)
#   -h, --help
#
# Everything lives under <repo>/.tempest/ (git-ignored): venv/ (Tempest
# $TEMPEST_VERSION), work/ (tempest workspace: etc/tempest.conf, logs/,
# .stestr/), xdg/ (keeps Tempest out of ~/.tempest).
# The last line printed is "tempest: N passed, N failed, N skipped";
# the exit status is 0 only if nothing failed.
set -euo pipefail

TEMPEST_VERSION=47.0.0

# ---------------------------------------------------------------------------
# [identity-feature-enabled]: what mCloud identity implements. Edit HERE.
# Option names are Tempest 47's. Effect on tempest.api.identity (138 tests):
IDENTITY_FEATURES=(
  # OS-TRUST delegation (tempest option is `trust`): 6 tests in
  # admin/v3/test_trusts.py; false skips the class.
  "trust=true"
  # Application-credential access rules: false skips v3/test_access_rules.py
  # (3 tests) and test_create_application_credential_access_rules (1).
  "access_rules=false"
  # PCI-DSS options (password history, lockout, min age): false skips
  # v3/test_users.py (3) and admin test_password_history_not_enforced_... (1).
  "security_compliance=false"
  # Domain-specific identity drivers: only changes list calls to add domain_id.
  "domain_specific_drivers=false"
  # Read-only user backend (LDAP): true would skip every user-writing test.
  "immutable_user_source=false"
  "api_v2=false"
  "api_v3=true"
  # Identity API extensions the tests check by name: OS-INHERIT gates
  # admin/v3/test_inherits.py (6), OS-EC2 gates v3/test_ec2_credentials.py (4).
  # Drop a name here if mCloud does not implement it ("" = none, "all" = all).
  "api_extensions=OS-INHERIT,OS-EC2"
  # Not options any more in Tempest 47 (so their tests always run):
  # application_credentials, project_tags, external_idp.
)
# ---------------------------------------------------------------------------
# [image] and [image-feature-enabled]: what mCloud image implements. Edit HERE.
# Written to tempest.conf when glance is among --services (or --services
# catalog finds an image endpoint). http_image / http_qcow2_image are served by
# a loopback HTTP server this script starts with --start (there is no internet
# here), and mcloud up is told to allow web-download from it only.
IMAGE_CONF=$(cat <<'INI'
[image]
catalog_type = image
build_timeout = 60
build_interval = 1
# Tempest uploads random bytes under the first container format and its first
# disk formats; like Glance, mCloud inspects content only in 'bare' containers,
# so 'ami' comes first for the tests that rely on bogus data.
container_formats = ami,bare,ari,aki,ovf,ova
disk_formats = raw,qcow2,ami,ari,aki,vhd,vmdk,vdi,iso,vhdx
hashing_algorithm = sha512
image_caching_enabled = false

[image-feature-enabled]
api_v2 = true
api_v1 = false
# glance-direct and web-download (info/import lists them)
import_image = true
os_glance_reserved = true
# locations API (show_multiple_locations) is not built
manage_locations = false
image_conversion = false
# 'bare' uploads are inspected (data must match disk_format), but tests may
# still upload bogus data in other containers
image_format_enforcement = false
do_secure_hash = true
http_store_enabled = false
store_weight_enabled = false
INI
)
# ---------------------------------------------------------------------------

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HERE="$REPO/tools/tempest"
TOP="$REPO/.tempest"
VENV="$TOP/venv"
# MCLOUD_TEMPEST_WORK names another workspace (e.g. .tempest/work-qemu), so that two runs can
# share the venv side by side without overwriting each other's results
WORK="${MCLOUD_TEMPEST_WORK:-$TOP/work}"
export XDG_CONFIG_HOME="$WORK.xdg"     # tempest init would create ~/.tempest/etc

CLOUD_DIR="" CLOUD=mcloud START=0 PORT="" SERVICES=identity CONCURRENCY=2 NETWORK_DRIVER="" COMPUTE_DRIVER=""
COMPUTE_HOSTS="" VALIDATION=""
RUN_PREFIX=()
IMAGE_FILE=""
LIST_ONLY=0 REINSTALL=0
LOAD_LISTS=() REGEXES=() EXCLUDES=() EXTRA_CONF=() PLUGINS=()

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "tempest.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --cloud-dir) CLOUD_DIR="$2"; shift 2 ;;
    --cloud) CLOUD="$2"; shift 2 ;;
    --start) START=1; shift ;;
    --port) PORT="$2"; shift 2 ;;
    --load-list) LOAD_LISTS+=("$(realpath "$2")"); shift 2 ;;
    --exclude) EXCLUDES+=("$2"); shift 2 ;;
    --services) SERVICES="$2"; shift 2 ;;
    --conf-extra) EXTRA_CONF+=("$(realpath "$2")"); shift 2 ;;
    --network-driver) NETWORK_DRIVER="$2"; shift 2 ;;
    --compute-driver) COMPUTE_DRIVER="$2"; shift 2 ;;
    --compute-hosts) COMPUTE_HOSTS="$2"; shift 2 ;;
    --image-file) IMAGE_FILE="$(realpath "$2")"; shift 2 ;;
    --concurrency) CONCURRENCY="$2"; shift 2 ;;
    --validation) VALIDATION=1; shift ;;
    --run-prefix) read -r -a RUN_PREFIX <<< "$2"; shift 2 ;;
    --list) LIST_ONLY=1; shift ;;
    --plugin) PLUGINS+=("$2"); shift 2 ;;
    --reinstall) REINSTALL=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; REGEXES+=("$@"); break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) REGEXES+=("$1"); shift ;;
  esac
done
[ ${#LOAD_LISTS[@]} -gt 0 ] || [ ${#REGEXES[@]} -gt 0 ] ||
  REGEXES=("tempest.api.identity")
[ "$START" = 1 ] || [ -n "$CLOUD_DIR" ] || [ "$LIST_ONLY" = 1 ] ||
  die "--cloud-dir DIR or --start is required"

# --- 1. Tempest venv --------------------------------------------------------
stamp="$TEMPEST_VERSION $(cat "$HERE/constraints.txt" | sha256sum | cut -c1-16) ${PLUGINS[*]:-}"
# one run installs at a time (runs in other workspaces may start side by side)
mkdir -p "$TOP"
exec 9>"$TOP/venv.lock"
flock 9
if [ "$REINSTALL" = 1 ] || [ "$(cat "$VENV/.mcloud-stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "tempest.sh: installing Tempest $TEMPEST_VERSION into $VENV" >&2
  rm -rf "$VENV"
  mkdir -p "$TOP"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check \
    -c "$HERE/constraints.txt" "tempest==$TEMPEST_VERSION" ${PLUGINS[@]+"${PLUGINS[@]}"}
  echo "$stamp" > "$VENV/.mcloud-stamp"
fi
exec 9>&-
PY="$VENV/bin/python"

# --- 2. optionally start mcloud ---------------------------------------------
MCLOUD_PID="" TMP_CLOUD_DIR="" HTTP_PID="" HTTP_URL="" VNC_PID=""
with_glance=0
case ",$SERVICES," in *,glance,*|*,catalog,*) with_glance=1 ;; esac
with_neutron=0
case ",$SERVICES," in *,neutron,*|*,catalog,*) with_neutron=1 ;; esac
[ -z "$NETWORK_DRIVER" ] || export MCLOUD_NETWORK_DRIVER="$NETWORK_DRIVER"
with_nova=0
case ",$SERVICES," in *,nova,*|*,catalog,*) with_nova=1 ;; esac
with_cinder=0
case ",$SERVICES," in *,cinder,*|*,catalog,*) with_cinder=1 ;; esac
[ -z "$COMPUTE_DRIVER" ] || export MCLOUD_COMPUTE_DRIVER="$COMPUTE_DRIVER"
cleanup() {
  local status=$?
  if [ -n "$HTTP_PID" ]; then kill "$HTTP_PID" 2>/dev/null || true; wait "$HTTP_PID" 2>/dev/null || true; fi
  if [ -n "$VNC_PID" ]; then kill "$VNC_PID" 2>/dev/null || true; wait "$VNC_PID" 2>/dev/null || true; fi
  if [ -n "$MCLOUD_PID" ] && kill -0 "$MCLOUD_PID" 2>/dev/null; then
    kill "$MCLOUD_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$MCLOUD_PID" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$MCLOUD_PID" 2>/dev/null || true
    wait "$MCLOUD_PID" 2>/dev/null || true
  fi
  # a data dir we made ourselves goes away after a clean run; kept on failure
  if [ -n "$TMP_CLOUD_DIR" ]; then
    if [ "$status" = 0 ]; then rm -rf "$TMP_CLOUD_DIR"
    else echo "tempest.sh: kept $TMP_CLOUD_DIR (mcloud-up.log)" >&2; fi
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$START" = 1 ]; then
  MCLOUD="${MCLOUD_BIN:-$REPO/.venv/bin/mcloud}"
  [ -x "$MCLOUD" ] || die "$MCLOUD not found (install the project into .venv)"
  if [ -z "$CLOUD_DIR" ]; then
    mkdir -p "$TOP"; CLOUD_DIR="$(mktemp -d "$TOP/cloud-XXXX")"; TMP_CLOUD_DIR="$CLOUD_DIR"
  fi
  mkdir -p "$CLOUD_DIR"
  [ -n "$PORT" ] || PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  LOG="$CLOUD_DIR/mcloud-up.log"
  if [ "$with_glance" = 1 ]; then
    # images for web-download tests, on a loopback server that mcloud may fetch from
    WEB="$CLOUD_DIR/web-images"; mkdir -p "$WEB"
    "$PY" - "$WEB" <<'PYEOF'
import os, struct, subprocess, sys
web = sys.argv[1]
with open(os.path.join(web, "image.raw"), "wb") as f:
    f.write(os.urandom(1 << 20))
qcow = os.path.join(web, "image.qcow2")
try:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", qcow, "64M"], check=True)
except (OSError, subprocess.CalledProcessError):
    # a minimal qcow2 v3 header (no backing file): what the image service inspects
    header = b"QFI\xfb" + struct.pack(">IQIIQIIQQIIQQQQII", 3, 0, 0, 16, 64 << 20, 0, 1, 0x30000, 0x10000,
                                        1, 0, 0, 0, 0, 0, 4, 104)
    with open(qcow, "wb") as f:
        f.write(header.ljust(0x40000, b"\0"))
PYEOF
    HTTP_PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    "$PY" -m http.server --bind 127.0.0.1 --directory "$WEB" "$HTTP_PORT" >"$CLOUD_DIR/web-images.log" 2>&1 &
    HTTP_PID=$!
    HTTP_URL="http://127.0.0.1:$HTTP_PORT/"
    export MCLOUD_IMAGE_WEB_DOWNLOAD_ALLOWED="$HTTP_URL"
    # two file stores, so that the multi-store tests (import to all/some stores, copy-image,
    # delete from one store) run; a data dir that has its own mcloud.toml keeps it
    if [ ! -f "$CLOUD_DIR/mcloud.toml" ]; then
      printf '[image]\nstores = ["file", "file2"]\ndefault_store = "file"\n\n[image.backends.file2]\ndriver = "file"\ndescription = "A second file store (Tempest multi-store tests)"\n' \
        > "$CLOUD_DIR/mcloud.toml"
    fi
  fi
  if [ "$with_nova" = 1 ] && [ "$COMPUTE_DRIVER" = fake ] && ! grep -q '^\[compute.fake\]' "$CLOUD_DIR/mcloud.toml" 2>/dev/null; then
    # the fake hypervisor's guests have no screen: a tiny VNC server (tests/rfb.py) stands in
    # for them, so that console URLs and the noVNC proxy's RFB relay are really exercised
    (cd "$REPO" && exec "$REPO/.venv/bin/python" -c 'import sys, time
from tests.rfb import TinyVnc
vnc = TinyVnc("mcloud-fake-guest"); print(vnc.port, flush=True); time.sleep(10 ** 9)' \
      >"$CLOUD_DIR/vnc-standin.port" 2>"$CLOUD_DIR/vnc-standin.log") &
    VNC_PID=$!
    for _ in $(seq 50); do [ -s "$CLOUD_DIR/vnc-standin.port" ] && break; sleep 0.1; done
    [ -s "$CLOUD_DIR/vnc-standin.port" ] || die "the VNC stand-in did not start ($CLOUD_DIR/vnc-standin.log)"
    printf '\n[compute.fake]\nvnc_port = %s\n%s' "$(cat "$CLOUD_DIR/vnc-standin.port")" \
      "${COMPUTE_HOSTS:+hosts = $COMPUTE_HOSTS
}" >> "$CLOUD_DIR/mcloud.toml"
  fi
  if [ "$with_cinder" = 1 ] && ! grep -q '^\[volume' "$CLOUD_DIR/mcloud.toml" 2>/dev/null; then
    # two file backends, so that the multi-backend tests (a volume type per backend, retype
    # between them) run
    printf '\n[volume.backends.file]\ndriver = "file"\n\n[volume.backends.file2]\ndriver = "file"\n' \
      >> "$CLOUD_DIR/mcloud.toml"
  fi
  echo "tempest.sh: starting mcloud up on 127.0.0.1:$PORT (data dir $CLOUD_DIR, log $LOG)" >&2
  "$MCLOUD" up --host 127.0.0.1 --port "$PORT" --data-dir "$CLOUD_DIR" >"$LOG" 2>&1 &
  MCLOUD_PID=$!
  for _ in $(seq 600); do
    grep -q "mCloud ready" "$LOG" 2>/dev/null && break
    kill -0 "$MCLOUD_PID" 2>/dev/null || { tail -20 "$LOG" >&2; die "mcloud up exited early"; }
    sleep 0.2
  done
  grep -q "mCloud ready" "$LOG" || { tail -20 "$LOG" >&2; die "mcloud up not ready after 120 s"; }
fi

CLOUDS_YAML=""
if [ -n "$CLOUD_DIR" ]; then
  CLOUDS_YAML="$CLOUD_DIR/clouds.yaml"
  [ -f "$CLOUD_DIR" ] && CLOUDS_YAML="$CLOUD_DIR"
  [ -f "$CLOUDS_YAML" ] || CLOUDS_YAML="$(find "$CLOUD_DIR" -maxdepth 3 -name clouds.yaml 2>/dev/null | head -1)"
  [ -n "$CLOUDS_YAML" ] && [ -f "$CLOUDS_YAML" ] || die "no clouds.yaml in $CLOUD_DIR"
  CLOUDS_YAML="$(realpath "$CLOUDS_YAML")"
fi

# --- 3. workspace + tempest.conf ---------------------------------------------
mkdir -p "$XDG_CONFIG_HOME/tempest" "$WORK"
if [ ! -f "$WORK/.stestr.conf" ]; then
  rm -rf "$WORK" "$WORK.yaml"
  (cd "$TOP" && "$VENV/bin/tempest" init --workspace-path "$WORK.yaml" \
      --name mcloud "$WORK" >/dev/null 2>&1) || die "tempest init failed"
fi
features="$(IFS=';'; echo "${IDENTITY_FEATURES[*]}")"
extra_args=()
if [ "$with_glance" = 1 ]; then
  printf '%s\n' "$IMAGE_CONF" > "$WORK/image.conf"
  extra_args+=(--extra "$WORK/image.conf")
  if [ -n "$HTTP_URL" ]; then
    printf '[image]\nhttp_image = %simage.raw\nhttp_qcow2_image = %simage.qcow2\n' "$HTTP_URL" "$HTTP_URL" \
      > "$WORK/image-http.conf"
    extra_args+=(--extra "$WORK/image-http.conf")
  fi
fi
if [ "$with_neutron" = 1 ] && [ -n "$CLOUDS_YAML" ]; then
  # [network]/[network-feature-enabled]: api_extensions exactly as /v2.0/extensions lists them,
  # and public_network_id for a router:external network made (once) as the admin
  "$PY" "$HERE/network_conf.py" --clouds "$CLOUDS_YAML" --cloud "$CLOUD" --out "$WORK/network.conf" ||
    die "network_conf.py failed"
  extra_args+=(--extra "$WORK/network.conf")
fi
if [ "$with_nova" = 1 ] && [ -n "$CLOUDS_YAML" ]; then
  # [compute]/[compute-feature-enabled]: images and flavors for the servers, the microversion range
  "$PY" "$HERE/compute_conf.py" --clouds "$CLOUDS_YAML" --cloud "$CLOUD" --out "$WORK/compute.conf" \
    ${IMAGE_FILE:+--image-file "$IMAGE_FILE"} ${VALIDATION:+--validation} || die "compute_conf.py failed"
  extra_args+=(--extra "$WORK/compute.conf")
fi
if [ "$with_cinder" = 1 ] && [ -n "$CLOUDS_YAML" ]; then
  # [volume]/[volume-feature-enabled]: microversion range, backends, what mCloud volume implements
  "$PY" "$HERE/volume_conf.py" --clouds "$CLOUDS_YAML" --cloud "$CLOUD" --out "$WORK/volume.conf" ||
    die "volume_conf.py failed"
  extra_args+=(--extra "$WORK/volume.conf")
fi
for f in ${EXTRA_CONF[@]+"${EXTRA_CONF[@]}"}; do extra_args+=(--extra "$f"); done
if [ -n "$CLOUDS_YAML" ]; then
  "$PY" "$HERE/mkconf.py" --clouds "$CLOUDS_YAML" --cloud "$CLOUD" \
    --out "$WORK/etc/tempest.conf" --workspace "$WORK" \
    --identity-features "$features" --services "$SERVICES" \
    ${extra_args[@]+"${extra_args[@]}"}
fi

# --- 4. select tests ----------------------------------------------------------
cd "$WORK"
export TEMPEST_CONFIG_DIR="$WORK/etc" TEMPEST_CONFIG=tempest.conf
"$VENV/bin/stestr" list > "$WORK/list.out" 2>"$WORK/list.err" ||
  { cat "$WORK/list.err" >&2; die "stestr list failed"; }
grep -E '^[A-Za-z_][A-Za-z0-9_.]*\.[A-Za-z0-9_]+(\[.*\])?$' "$WORK/list.out" > "$WORK/all-tests.txt" ||
  die "stestr list found no tests"
SELECTED="$WORK/selected.txt"
if [ ${#LOAD_LISTS[@]} -gt 0 ]; then
  "$PY" "$HERE/map_ids.py" --available "$WORK/all-tests.txt" \
    --out "$WORK/from-lists.txt" "${LOAD_LISTS[@]}" || die "no listed test resolved"
fi
"$PY" - "$WORK/all-tests.txt" "$SELECTED" "$WORK/from-lists.txt" \
  "${#LOAD_LISTS[@]}" ${REGEXES[@]+"${REGEXES[@]}"} -- ${EXCLUDES[@]+"${EXCLUDES[@]}"} <<'EOF'
import re, sys
avail, out, lists, nlists = sys.argv[1:5]
rest = sys.argv[5:]
sep = rest.index('--')
inc, exc = rest[:sep], rest[sep + 1:]
allids = [l.strip() for l in open(avail) if l.strip()]
chosen = []
if int(nlists):
    chosen += [l.strip() for l in open(lists) if l.strip()]
if inc:
    rx = re.compile('|'.join('(?:%s)' % r for r in inc))
    chosen += [t for t in allids if rx.search(t)]
if exc:
    ex = re.compile('|'.join('(?:%s)' % r for r in exc))
    chosen = [t for t in chosen if not ex.search(t)]
seen = set()
chosen = [t for t in chosen if not (t in seen or seen.add(t))]
open(out, 'w').write(''.join(t + '\n' for t in chosen))
EOF
NSEL=$(wc -l < "$SELECTED")
[ "$NSEL" -gt 0 ] || die "no test selected"
if [ "$LIST_ONLY" = 1 ]; then cat "$SELECTED"; echo "tempest.sh: $NSEL tests" >&2; exit 0; fi

# --- 5. run -------------------------------------------------------------------
echo "tempest.sh: running $NSEL tests against $(sed -n 's/^uri_v3 = //p' etc/tempest.conf) (concurrency $CONCURRENCY)" >&2
runs_before="$(cat "$WORK/.stestr/next-stream" 2>/dev/null || echo 0)"
rc=0
${RUN_PREFIX[@]+"${RUN_PREFIX[@]}"} "$VENV/bin/tempest" run --config-file "$WORK/etc/tempest.conf" \
  --load-list "$SELECTED" --concurrency "$CONCURRENCY" > "$WORK/run.log" 2>&1 || rc=$?
if [ "$(cat "$WORK/.stestr/next-stream" 2>/dev/null || echo 0)" = "$runs_before" ] ||
   ! "$VENV/bin/stestr" last --subunit > "$WORK/last.subunit" 2>/dev/null; then
  echo "tempest.sh: tempest run recorded no results (exit $rc):" >&2
  tail -40 "$WORK/run.log" >&2
  echo "tempest: 0 passed, $NSEL failed, 0 skipped"
  exit 1
fi
src=0
"$PY" "$HERE/summary.py" --selected "$SELECTED" --csv "$WORK/results.csv" \
  < "$WORK/last.subunit" || src=$?
echo "tempest.sh: full output $WORK/run.log, log $WORK/logs/tempest.log, results $WORK/results.csv" >&2
[ "$src" = 0 ] && [ "$rc" = 0 ] && exit 0
exit 1
