#!/usr/bin/env bash
# Builds the runtime image that deploy/Dockerfile describes without a
# container engine, and proves it runs:
#
#   1. the release binary, built as the Dockerfile's build stage builds it
#      (LIBZ_SYS_STATIC=1, --locked, the git revision passed in), needing
#      no shared library outside the Dockerfile's RUNTIME_LIBRARIES;
#   2. a root filesystem of the Debian 12 packages distroless cc-debian12
#      is made of (mmdebstrap, extracted, no maintainer scripts), its users,
#      and what the Dockerfile's final stage COPYs into it;
#   3. packed with umoci as an OCI image layout whose config takes USER,
#      EXPOSE, ENTRYPOINT, CMD and LABEL from the Dockerfile's final stage;
#      read back (index -> manifest -> config, and the layer) and compared;
#   4. the image unpacked again and run under chroot as the image's user:
#      --version, check-config, produce, and run against $KAFKA_BROKERS
#      until /readyz answers 200, then SIGTERM and a clean exit.
#
#   scripts/image.sh          # KAFKA_BROKERS must name a running broker
#
# ENGAGEMENT_BUILD_REVISION replaces the revision from git (as in
# build.rs); IMAGE_START_DEADLINE (60) is the seconds allowed until
# /readyz answers 200.
#
# Everything goes to target/image/ (git-ignored): the cargo target dir
# (incremental), debs/ (the Debian packages, reused while their versions
# stay), rootfs/, oci/ (the image layout), bundle/ (the unpacked copy that
# runs), logs/. Needs root (mmdebstrap, chroot, a private mount namespace)
# and the packages of scripts/install-deps.sh. Exits non-zero on the
# first failure, with the daemon's log when the daemon was running.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

DOCKERFILE=deploy/Dockerfile
OUT=target/image
ROOTFS=$OUT/rootfs
OCI=$OUT/oci
BUNDLE=$OUT/bundle
LOGS=$OUT/logs
SUITE=bookworm
MIRRORS=(
  "deb http://deb.debian.org/debian $SUITE main"
  "deb http://deb.debian.org/debian $SUITE-updates main"
  "deb http://deb.debian.org/debian-security $SUITE-security main"
)
# The base image the packages below model; the script refuses another one.
BASE_IMAGE=gcr.io/distroless/cc-debian12:nonroot
# distroless cc-debian12 = static (base-files, netbase, tzdata, media-types,
# the CA bundle, users, /tmp, nsswitch.conf) + base (libc6, libssl3) + cc
# (libgcc-s1, gcc-12-base, libstdc++6, libgomp1). The libraries are
# extracted with their dependencies (which stay within this list); the
# data packages without theirs (ca-certificates and tzdata depend on
# debconf and perl, base-files on awk), as distroless does.
LIBRARY_PACKAGES=libc6,libgcc-s1,gcc-12-base,libstdc++6,libgomp1,libssl3
DATA_PACKAGES="base-files netbase tzdata media-types ca-certificates"
# The environment and working directory the distroless base sets.
BASE_ENV=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt)
BASE_WORKDIR=/home/nonroot
NONROOT=65532
START_DEADLINE=${IMAGE_START_DEADLINE:-60}  # s until /readyz answers 200
STOP_DEADLINE=20                            # s after SIGTERM; shutdown_timeout is 10 s

step() { printf '\n--> image: %s\n' "$*"; }
die() { echo "image.sh: ERROR: $*" >&2; exit 1; }
elapsed() { echo "($((SECONDS - $1)) s)"; }

preflight() {
  [[ $(id -u) -eq 0 ]] || die "needs root (mmdebstrap, chroot, mount namespace)"
  local c
  for c in mmdebstrap umoci jq python3 curl ldd chroot unshare; do
    command -v "$c" >/dev/null || die "$c not found: run scripts/install-deps.sh"
  done
  [[ -n "${KAFKA_BROKERS:-}" ]] || die "KAFKA_BROKERS is not set (eval \"\$(scripts/kafka.sh env)\")"
}

# ------------------------------------------------------------ the Dockerfile

# Prints the final stage as JSON: base, user, exposed ports, entrypoint,
# cmd, labels (build args expanded, the revision given as $1), the COPYs,
# and the build stage's RUNTIME_LIBRARIES. Fails on an instruction of the
# final stage it does not model, so that the image built here cannot
# silently differ from the Dockerfile's.
dockerfile_spec() {
  python3 - "$DOCKERFILE" "$1" <<'PY'
import json, re, shlex, sys

path, revision = sys.argv[1], sys.argv[2]
lines, cur = [], ""
for raw in open(path):
    s = raw.rstrip("\n")
    if re.match(r"\s*#", s) or (not cur and not s.strip()):
        continue
    if s.endswith("\\"):
        cur += s[:-1] + " "
        continue
    lines.append((cur + s).strip())
    cur = ""

stages, args = [], {}
for line in lines:
    op, _, rest = line.partition(" ")
    op, rest = op.upper(), rest.strip()
    if op == "FROM":
        stages.append({"from": rest, "args": {}, "ops": []})
    elif op == "ARG" and not stages:
        k, _, v = rest.partition("=")
        args[k] = v
    else:
        stages[-1]["ops"].append((op, rest))

def expand(value, known):
    return re.sub(r"\$\{?(\w+)\}?", lambda m: known.get(m.group(1), ""), value)

def unquote(v):
    return shlex.split(v)[0] if v else ""

final, spec = stages[-1], {"Labels": {}, "Copies": [], "RuntimeLibraries": None}
known = {}
spec["Base"] = expand(final["from"], args)
for op, rest in stages[0]["ops"]:
    if op == "ARG" and rest.startswith("RUNTIME_LIBRARIES="):
        spec["RuntimeLibraries"] = unquote(rest.partition("=")[2])
for op, rest in final["ops"]:
    if op == "ARG":
        k, _, v = rest.partition("=")
        known[k] = unquote(v) if v else unquote(args.get(k, ""))
        if k == "ENGAGEMENT_BUILD_REVISION":
            known[k] = revision
    elif op == "USER":
        spec["User"] = rest
    elif op == "EXPOSE":
        spec["ExposedPorts"] = {p if "/" in p else p + "/tcp": {} for p in rest.split()}
    elif op in ("ENTRYPOINT", "CMD"):
        if not rest.startswith("["):
            sys.exit(f"{path}: {op} must be in JSON form")
        spec[op.capitalize()] = json.loads(rest)
    elif op == "LABEL":
        for word in shlex.split(rest):
            k, _, v = word.partition("=")
            spec["Labels"][k] = expand(v, known)
    elif op == "COPY":
        words = rest.split()
        flags = dict(w[2:].partition("=")[::2] for w in words if w.startswith("--"))
        paths = [w for w in words if not w.startswith("--")]
        spec["Copies"].append({"from": flags.get("from"), "chown": flags.get("chown"),
                               "src": paths[:-1], "dest": paths[-1]})
    else:
        sys.exit(f"{path}: {op} in the final stage: scripts/image.sh does not model it")
print(json.dumps(spec))
PY
}

# ---------------------------------------------------------------- 1. binary

revision() {
  if [[ -n "${ENGAGEMENT_BUILD_REVISION:-}" ]]; then echo "$ENGAGEMENT_BUILD_REVISION"; return; fi
  local head
  head=$(git rev-parse --short=12 HEAD)
  if [[ -n "$(git status --porcelain --untracked-files=no)" ]]; then head="$head-dirty"; fi
  echo "$head"
}

build_binary() {
  local t=$SECONDS
  step "release binary, as the Dockerfile builds it (revision $REVISION)"
  LIBZ_SYS_STATIC=1 CARGO_TARGET_DIR=$OUT ENGAGEMENT_BUILD_REVISION=$REVISION \
    cargo build --release --locked
  BINARY=$OUT/release/engagement-monitor
  ldd "$BINARY"
  local allowed
  allowed=$(jq -r '.RuntimeLibraries // empty' <<<"$SPEC")
  [[ -n "$allowed" ]] || die "$DOCKERFILE: no ARG RUNTIME_LIBRARIES='...' in the build stage"
  if ldd "$BINARY" | grep -vE "$allowed"; then
    die "the binary needs a shared library outside $DOCKERFILE's RUNTIME_LIBRARIES (above)"
  fi
  echo "every library is one of RUNTIME_LIBRARIES $(elapsed $t)"
}

# ---------------------------------------------------------------- 2. rootfs

# Debian packages: the libraries with their dependencies (extracted, not
# installed: no maintainer scripts, no dpkg or shell needed), the data
# packages without theirs (extract_data_packages, run by mmdebstrap as a
# hook). debs/ is put in apt's archive before the download, so apt fetches
# only what changed, and afterwards holds just the debs of this run.
debootstrap_rootfs() {
  mkdir -p "$OUT/debs"
  rm -rf "$ROOTFS"
  # shellcheck disable=SC2016 # the hooks are sh scripts of their own: mmdebstrap passes $1
  IMAGE_SH="$REPO/scripts/image.sh" DEBS="$REPO/$OUT/debs" mmdebstrap --quiet --mode=root --variant=extract \
    --include="$LIBRARY_PACKAGES" \
    --aptopt='APT::Sandbox::User "root"' \
    --setup-hook='mkdir -p "$1/var/cache/apt/archives" && find "$DEBS" -name "*.deb" -exec cp -l {} "$1/var/cache/apt/archives/" \;' \
    --extract-hook='"$IMAGE_SH" --extract-hook "$1"' \
    "$SUITE" "$ROOTFS" "${MIRRORS[@]}"
}

# In mmdebstrap's extract hook, with its apt configuration: extracts the
# data packages, writes a dpkg status file per package for image scanners
# (/var/lib/dpkg/status.d/, as distroless does), keeps this run's debs in
# debs/. The file names come from apt (--print-uris), never from a glob
# that would also match a stale version in the cache.
extract_data_packages() {
  local root=$1 archives=$1/var/cache/apt/archives names files f
  export APT_CONFIG=$MMDEBSTRAP_APT_CONFIG
  # shellcheck disable=SC2086 # package lists
  names=$(apt-get install --simulate -qq ${LIBRARY_PACKAGES//,/ } | awk '/^Inst /{print $2}')
  # shellcheck disable=SC2086
  files=$(apt-get download --print-uris -qq $names $DATA_PACKAGES | awk '{print $2}')
  # shellcheck disable=SC2086
  (cd "$archives" && apt-get download -qq $DATA_PACKAGES)
  mkdir -p "$root/var/lib/dpkg/status.d"
  for f in $files; do
    [[ -f "$archives/$f" ]] || die "apt did not fetch $f"
    if [[ " $DATA_PACKAGES " == *" ${f%%_*} "* ]]; then dpkg-deb --extract "$archives/$f" "$root"; fi
    dpkg-deb --field "$archives/$f" >"$root/var/lib/dpkg/status.d/${f%%_*}"
  done
  find "$DEBS" -name '*.deb' -delete
  for f in $files; do cp -l "$archives/$f" "$DEBS/"; done
}

# What distroless adds to the packages: users and groups, homes, /tmp,
# nsswitch.conf, the CA bundle (the certificates of ca-certificates
# concatenated, as distroless builds it, instead of its postinst).
add_base_files() {
  cat >"$ROOTFS/etc/passwd" <<EOF
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:$NONROOT:$NONROOT:nonroot:/home/nonroot:/sbin/nologin
EOF
  cat >"$ROOTFS/etc/group" <<EOF
root:x:0:
nobody:x:65534:
tty:x:5:
staff:x:50:
nonroot:x:$NONROOT:
EOF
  printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n' \
    >"$ROOTFS/etc/nsswitch.conf"
  install -d -m 0700 "$ROOTFS/root"
  install -d -m 0755 "$ROOTFS/home"
  install -d -m 0700 -o "$NONROOT" -g "$NONROOT" "$ROOTFS/home/nonroot"
  install -d -m 1777 "$ROOTFS/tmp"
  install -d "$ROOTFS/etc/ssl/certs" "$ROOTFS/proc" "$ROOTFS/sys"
  find "$ROOTFS/usr/share/ca-certificates" -name '*.crt' | LC_ALL=C sort | xargs cat \
    >"$ROOTFS/etc/ssl/certs/ca-certificates.crt"
  grep -q 'BEGIN CERTIFICATE' "$ROOTFS/etc/ssl/certs/ca-certificates.crt" || die "empty CA bundle"
  # The bundle replaces the single certificates, as in distroless.
  rm -rf "$ROOTFS/usr/share/ca-certificates" "$ROOTFS/usr/sbin/update-ca-certificates" \
    "$ROOTFS/etc/ca-certificates" "$ROOTFS/etc/ca-certificates.conf"
}

# mmdebstrap's own setup (apt and dpkg configuration, the host's
# resolv.conf and hostname, device nodes) is not part of the image.
strip_setup() {
  rm -rf "$ROOTFS"/etc/apt "$ROOTFS"/etc/dpkg "$ROOTFS"/var/lib/apt "$ROOTFS"/var/cache/apt \
    "$ROOTFS"/var/log/apt "$ROOTFS"/etc/resolv.conf "$ROOTFS"/etc/hostname "$ROOTFS"/etc/fstab
  find "$ROOTFS/var/lib/dpkg" -mindepth 1 -maxdepth 1 ! -name status.d -exec rm -rf {} +
  find "$ROOTFS/dev" -mindepth 1 -delete
  local stray
  stray=$(find "$ROOTFS" ! -type d \( -name sh -o -name bash -o -name dash -o -name apt -o -name dpkg -o -name perl \) -print)
  [[ -z "$stray" ]] || die "a shell or package manager in the root filesystem: $stray"
}

# The final stage's COPYs, by source: the binary, and the empty state
# directory with the COPY's owner.
apply_copies() {
  local n i src dest chown
  n=$(jq '.Copies | length' <<<"$SPEC")
  for ((i = 0; i < n; i++)); do
    src=$(jq -r ".Copies[$i].src | join(\" \")" <<<"$SPEC")
    dest=$(jq -r ".Copies[$i].dest" <<<"$SPEC")
    chown=$(jq -r ".Copies[$i].chown // \"0:0\"" <<<"$SPEC")
    case "$src" in
      /out/engagement-monitor)
        install -D -m 0755 -o "${chown%%:*}" -g "${chown##*:}" "$BINARY" "$ROOTFS$dest" ;;
      /out/state/)
        install -d -m 0755 -o "${chown%%:*}" -g "${chown##*:}" "$ROOTFS$dest" ;;
      *) die "$DOCKERFILE: COPY $src $dest: scripts/image.sh does not know this source" ;;
    esac
  done
}

build_rootfs() {
  local t=$SECONDS
  step "root filesystem of $BASE_IMAGE's packages ($SUITE) + the final stage's COPYs"
  [[ "$(jq -r .Base <<<"$SPEC")" == "$BASE_IMAGE" ]] ||
    die "$DOCKERFILE's final stage is FROM $(jq -r .Base <<<"$SPEC"); this script models $BASE_IMAGE"
  debootstrap_rootfs
  add_base_files
  strip_setup
  apply_copies
  echo "$(du -sh "$ROOTFS" | cut -f1) in $ROOTFS, packages: $(find "$ROOTFS/var/lib/dpkg/status.d" -type f -printf '%f ' | tr ' ' '\n' | sort | xargs) $(elapsed $t)"
}

# ------------------------------------------------------------------ 3. OCI

pack_image() {
  local t=$SECONDS args=()
  step "OCI image layout $OCI:$REVISION (umoci), config from $DOCKERFILE"
  rm -rf "$OCI"
  umoci init --layout "$OCI"
  umoci new --image "$OCI:$REVISION"
  umoci insert --image "$OCI:$REVISION" "$ROOTFS" /
  args+=(--config.user "$(jq -r .User <<<"$SPEC")" --config.workingdir "$BASE_WORKDIR")
  local e
  for e in "${BASE_ENV[@]}"; do args+=(--config.env "$e"); done
  while IFS= read -r e; do args+=(--config.exposedports "$e"); done < <(jq -r '.ExposedPorts | keys[]' <<<"$SPEC")
  while IFS= read -r e; do args+=(--config.entrypoint "$e"); done < <(jq -r '.Entrypoint[]' <<<"$SPEC")
  while IFS= read -r e; do args+=(--config.cmd "$e"); done < <(jq -r '.Cmd[]' <<<"$SPEC")
  while IFS= read -r e; do args+=(--config.label "$e"); done < <(jq -r '.Labels | to_entries[] | "\(.key)=\(.value)"' <<<"$SPEC")
  umoci config --image "$OCI:$REVISION" "${args[@]}"
  umoci gc --layout "$OCI"
  echo "$(du -sh "$OCI" | cut -f1) $(elapsed $t)"
}

blob() { echo "$OCI/blobs/${1/://}"; }

# Reads the layout back as a registry or runtime would and compares it
# with the Dockerfile and with Cargo.toml.
inspect_image() {
  step "inspecting the layout: index -> manifest -> config, and the layer"
  local manifest config layer want got
  manifest=$(jq -r --arg t "$REVISION" \
    '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$OCI/index.json")
  [[ -n "$manifest" ]] || die "no manifest tagged $REVISION in $OCI/index.json"
  config=$(jq -r .config.digest "$(blob "$manifest")")
  want=$(jq -S '{User, ExposedPorts, Entrypoint, Cmd, Labels}' <<<"$SPEC")
  got=$(jq -S '.config | {User, ExposedPorts, Entrypoint, Cmd, Labels}' "$(blob "$config")")
  if [[ "$want" != "$got" ]]; then
    diff <(echo "$want") <(echo "$got") >&2 || true
    die "the image config differs from $DOCKERFILE's final stage (< Dockerfile, > image)"
  fi
  echo "$got"
  local version license description
  version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
  license=$(sed -n 's/^license = "\(.*\)"/\1/p' Cargo.toml | head -1)
  description=$(sed -n 's/^description = "\(.*\)"/\1/p' Cargo.toml | head -1)
  jq -e --arg v "$version" --arg l "$license" --arg d "$description" --arg r "$REVISION" '.config.Labels as $L
    | $L["org.opencontainers.image.title"] == "engagement-monitor"
      and $L["org.opencontainers.image.version"] == $v and $L["org.opencontainers.image.licenses"] == $l
      and $L["org.opencontainers.image.description"] == $d and $L["org.opencontainers.image.revision"] == $r' \
    "$(blob "$config")" >/dev/null ||
    die "the labels do not say Cargo.toml's name, version ($version), license, description, or revision $REVISION"
  [[ "$(jq -r .User <<<"$SPEC")" =~ ^[0-9]+(:[0-9]+)?$ ]] || die "USER must be numeric (Kubernetes runAsNonRoot)"
  [[ "$(jq '.layers | length' "$(blob "$manifest")")" == 1 ]] || die "expected one layer"
  layer=$(blob "$(jq -r '.layers[0].digest' "$(blob "$manifest")")")
  local listing
  listing=$(tar -tzvf "$layer")
  grep -E '^-rwxr-xr-x 0/0 .* (\./)?usr/local/bin/engagement-monitor$' <<<"$listing" ||
    die "the layer has no executable /usr/local/bin/engagement-monitor owned by root"
  grep -E "^drwxr-xr-x $NONROOT/$NONROOT .* (\./)?var/lib/engagement-monitor/?\$" <<<"$listing" ||
    die "the layer has no /var/lib/engagement-monitor owned by $NONROOT"
  tar -xzOf "$layer" --wildcards '*etc/passwd' | grep -x "nonroot:x:$NONROOT:$NONROOT:nonroot:/home/nonroot:/sbin/nologin" ||
    die "the layer's /etc/passwd has no nonroot user $NONROOT"
  tar -xzOf "$layer" --wildcards '*etc/ssl/certs/ca-certificates.crt' | grep -c 'BEGIN CERTIFICATE' >/dev/null ||
    die "the layer has no CA bundle"
}

# ------------------------------------------------------------------ 4. run

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Runs a command of the image's binary under chroot as the image's user,
# with the image's environment, in a private mount namespace with /proc
# and a minimal /dev as a container runtime provides them (gone when the
# process ends). It execs, so that in a subshell (`&`, `$(...)`, a pipe:
# always call it in one) the process is the daemon itself.
in_image() {
  local user env=()
  user=$(jq -r .config.User "$IMAGE_CONFIG")
  mapfile -t env < <(jq -r '.config.Env[]' "$IMAGE_CONFIG")
  # shellcheck disable=SC2016 # the sh script takes the root as $1
  exec unshare --mount --propagation private -- sh -c '
    r=$1; shift
    mount -t proc proc "$r/proc" && mount -t tmpfs -o mode=0755,size=64k tmpfs "$r/dev" || exit 125
    for d in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
      IFS=: read -r n ma mi <<EOF
$d
EOF
      mknod -m 0666 "$r/dev/$n" c "$ma" "$mi" || exit 125
    done
    exec "$@"' sh "$RUN_ROOT" \
    env -i "${env[@]}" HOME=/home/nonroot chroot --userspec="$user" "$RUN_ROOT" "$@"
}

unpack_image() {
  step "unpacking the image (umoci) to run it"
  rm -rf "$BUNDLE"
  umoci unpack --image "$OCI:$REVISION" "$BUNDLE"
  RUN_ROOT=$BUNDLE/rootfs
  local manifest
  manifest=$(jq -r '.manifests[0].digest' "$OCI/index.json")
  IMAGE_CONFIG=$(blob "$(jq -r .config.digest "$(blob "$manifest")")")
  [[ "$(stat -c %u:%g "$RUN_ROOT/var/lib/engagement-monitor")" == "$NONROOT:$NONROOT" ]] ||
    die "/var/lib/engagement-monitor is not owned by $NONROOT in the unpacked image"
}

check_version() {
  step "--version in the image"
  local version got want
  version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
  want="engagement-monitor $version (revision $REVISION)"
  got=$(in_image /usr/local/bin/engagement-monitor --version) || die "--version failed in the image: $got"
  echo "$got"
  [[ "$got" == "$want" ]] || die "--version says '$got', expected '$want'"
}

check_config() {
  step "check-config of a file in the image"
  mkdir -p "$RUN_ROOT/etc/engagement-monitor"
  cat >"$RUN_ROOT/etc/engagement-monitor/engagement-monitor.toml" <<EOF
[kafka]
brokers = "$KAFKA_BROKERS"
topic = "$TOPIC"
group_id = "$TOPIC"

[state]
dir = "/var/lib/engagement-monitor"
EOF
  local out
  out=$(in_image /usr/local/bin/engagement-monitor check-config /etc/engagement-monitor/engagement-monitor.toml) ||
    die "check-config failed in the image: $out"
  grep -E '^(brokers|topic|group_id|dir) = .*# file$' <<<"$out"
  grep -q "^dir = \"/var/lib/engagement-monitor\" *# file" <<<"$out" || die "check-config did not take state.dir from the file"
}

# A few events into a fresh topic, from the image too (it creates the topic).
produce_events() {
  step "produce into $TOPIC from the image"
  in_image /usr/local/bin/engagement-monitor produce --brokers "$KAFKA_BROKERS" --topic "$TOPIC" \
    --partitions 1 --events 500 --no-progress 2>&1 | tail -1 || die "produce failed in the image"
}

daemon_failed() {
  echo "---- daemon log ($LOGS/run.log) ----" >&2
  cat "$LOGS/run.log" >&2 || true
  if [[ -n "${DAEMON:-}" ]] && kill -0 "$DAEMON" 2>/dev/null; then kill -KILL "$DAEMON" 2>/dev/null || true; fi
  die "$*"
}

run_daemon() {
  local port deadline status t=$SECONDS
  port=$(free_port)
  step "run in the image as $(jq -r .config.User "$IMAGE_CONFIG"), against $KAFKA_BROKERS, listening on 127.0.0.1:$port"
  mkdir -p "$LOGS"
  in_image /usr/local/bin/engagement-monitor run --config /etc/engagement-monitor/engagement-monitor.toml \
    --brokers "$KAFKA_BROKERS" --topic "$TOPIC" --listen "127.0.0.1:$port" >"$LOGS/run.log" 2>&1 &
  DAEMON=$!
  trap 'daemon_failed "interrupted"' INT TERM
  # Whatever ends the script, the daemon does not outlive it.
  trap 'kill -KILL "$DAEMON" 2>/dev/null || true' EXIT
  deadline=$((SECONDS + START_DEADLINE))
  until [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")" == 200 ]]; do
    kill -0 "$DAEMON" 2>/dev/null || daemon_failed "the daemon exited before it was ready"
    ((SECONDS < deadline)) || daemon_failed "/readyz did not answer 200 within $START_DEADLINE s"
    sleep 0.2
  done
  echo "/readyz 200 after $((SECONDS - t)) s"
  prove_process "$port"
  kill -TERM "$DAEMON"
  deadline=$((SECONDS + STOP_DEADLINE))
  while kill -0 "$DAEMON" 2>/dev/null; do
    ((SECONDS < deadline)) || daemon_failed "still running $STOP_DEADLINE s after SIGTERM"
    sleep 0.2
  done
  status=0; wait "$DAEMON" || status=$?
  trap - INT TERM EXIT
  ((status == 0)) || daemon_failed "exit status $status after SIGTERM"
  echo "clean exit (status 0) after SIGTERM"
  compgen -G "$RUN_ROOT/var/lib/engagement-monitor/checkpoint-*.bin" >/dev/null ||
    daemon_failed "no checkpoint in /var/lib/engagement-monitor after shutdown"
  ls -ln "$RUN_ROOT/var/lib/engagement-monitor"
}

# The process runs as the image's user, inside the unpacked root, and it
# served what it consumed.
prove_process() {
  local uid gid root ranked
  uid=$(awk '/^Uid:/ {print $2 ":" $3 ":" $4 ":" $5}' "/proc/$DAEMON/status")
  gid=$(awk '/^Gid:/ {print $2 ":" $3 ":" $4 ":" $5}' "/proc/$DAEMON/status")
  root=$(readlink "/proc/$DAEMON/root")
  echo "pid $DAEMON: Uid $uid, Gid $gid, root $root"
  [[ "$uid" == "$NONROOT:$NONROOT:$NONROOT:$NONROOT" && "$gid" == "$NONROOT:$NONROOT:$NONROOT:$NONROOT" ]] ||
    daemon_failed "the daemon does not run as $NONROOT:$NONROOT"
  [[ "$root" == "$(realpath "$RUN_ROOT")" ]] || daemon_failed "the daemon's root is $root, not the image"
  ranked=$(curl -sf "http://127.0.0.1:$1/v1/rankings?window=2025-Q3" | jq '.entries | length') ||
    daemon_failed "GET /v1/rankings failed"
  echo "GET /v1/rankings?window=2025-Q3: $ranked entries"
  ((ranked > 0)) || daemon_failed "the daemon ranks no page of the events produced"
}

# ------------------------------------------------------------------- main

if [[ "${1:-}" == --extract-hook ]]; then extract_data_packages "$2"; exit 0; fi
preflight
T0=$SECONDS
REVISION=$(revision)
SPEC=$(dockerfile_spec "$REVISION") || die "$DOCKERFILE: cannot take the image from it (above)"
TOPIC="image-check-$(date +%s)-$$"
build_binary
build_rootfs
pack_image
inspect_image
unpack_image
check_version
check_config
produce_events
run_daemon
step "the image is proven ($((SECONDS - T0)) s): $OCI:$REVISION"
