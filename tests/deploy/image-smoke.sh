#!/usr/bin/env bash
# Smoke test of the chat-platform image (scripts/image, deploy/image/README.md): its config
# (entrypoint /usr/bin/chat, user 65532, labels), its files (every service binary, the
# widget, the topics file, the CA bundle; no shell, no package manager), that every binary's
# shared libraries resolve inside the image, and that the entrypoint runs each service's
# --help as uid 65532 and refuses an unknown service with exit status 2.
#
# How the image is run: with podman (`podman run oci:LAYOUT:TAG`) if podman is installed and
# can run a container on this machine; otherwise (no podman, or no cgroups / user
# namespaces / rlimits for it, as on many CI sandboxes) the image is unpacked with umoci and
# the entrypoint is run in its root filesystem with chroot --userspec=65532:65532, which
# needs root. The test says which path ran. Exit status 77 (ctest: skipped) when neither is
# possible.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
SERVICES=(gateway message broadcast moderation notify api admin)

usage() {
    cat <<EOF
usage: tests/deploy/image-smoke.sh [--build] [--layout DIR] [--tag TAG] [--build-dir DIR]
  --build          build the image first with scripts/image (into --layout, --build-dir)
  --layout DIR     the OCI image layout (default build/image/oci)
  --tag TAG        the image's tag in it (default: its only tag; with --build: smoke)
  --build-dir DIR  the Release build scripts/image uses (default: scripts/image's)
EOF
}

BUILD=0
LAYOUT="$root/build/image/oci"
TAG=""
BUILD_DIR=""
ARCHIVE=""
while [ $# -gt 0 ]; do
    case "$1" in
    --build) BUILD=1; shift ;;
    --layout | --tag | --build-dir)
        [ $# -ge 2 ] || { usage >&2; exit 2; }
        case "$1" in
        --layout) LAYOUT=$2 ;;
        --tag) TAG=$2 ;;
        --build-dir) BUILD_DIR=$2 ;;
        esac
        shift 2
        ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done

say() { printf '[image-smoke] %s\n' "$*"; }
failures=0
fail() {
    printf '[image-smoke] FAIL: %s\n' "$*" >&2
    failures=$((failures + 1))
}

if [ "$BUILD" -eq 1 ]; then
    TAG=${TAG:-smoke}
    args=(--out "$LAYOUT" --tag "$TAG")
    [ -n "$BUILD_DIR" ] && args+=(--build-dir "$BUILD_DIR")
    ARCHIVE="$(dirname "$LAYOUT")/chat-platform-$TAG.tar"
    args+=(--archive "$ARCHIVE")
    t0=$SECONDS
    "$root/scripts/image" "${args[@]}"
    say "scripts/image took $((SECONDS - t0)) s"
fi
[ -f "$LAYOUT/index.json" ] || { echo "no OCI image layout at $LAYOUT (run scripts/image)" >&2; exit 1; }
if [ -z "$TAG" ]; then
    mapfile -t tags < <(umoci ls --layout "$LAYOUT")
    [ ${#tags[@]} -eq 1 ] || { echo "$LAYOUT has ${#tags[@]} tags; say which with --tag" >&2; exit 2; }
    TAG=${tags[0]}
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/chat-image-smoke.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# --- the image's config ------------------------------------------------------------------
python3 - "$LAYOUT" "$TAG" >"$tmp/config.env" <<'EOF' || fail "the image config is not as expected"
import json, os, shlex, sys
layout, tag = sys.argv[1:]
def blob(digest):
    with open(os.path.join(layout, "blobs", *digest.split(":"))) as f:
        return json.load(f)
index = json.load(open(os.path.join(layout, "index.json")))
desc = [m for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag]
if len(desc) != 1:
    sys.exit(f"tag {tag} not in {layout}")
manifest = blob(desc[0]["digest"])
image = blob(manifest["config"]["digest"])
cfg = image["config"]
bad = []
if cfg.get("User") != "65532:65532":
    bad.append(f"User is {cfg.get('User')!r}, not '65532:65532'")
if cfg.get("Entrypoint") != ["/usr/bin/chat"]:
    bad.append(f"Entrypoint is {cfg.get('Entrypoint')!r}")
if cfg.get("WorkingDir") != "/":
    bad.append(f"WorkingDir is {cfg.get('WorkingDir')!r}")
labels = cfg.get("Labels") or {}
for key in ("version", "revision", "title"):
    if not labels.get("org.opencontainers.image." + key):
        bad.append(f"label org.opencontainers.image.{key} missing")
if image.get("os") != "linux" or len(manifest["layers"]) != 2:
    bad.append(f"os {image.get('os')}, {len(manifest['layers'])} layers (want linux, base + services)")
for b in bad:
    print("image config: " + b, file=sys.stderr)
for e in cfg.get("Env") or []:
    print(shlex.quote(e))
sys.exit(1 if bad else 0)
EOF
mapfile -t image_env < <(xargs -n1 <"$tmp/config.env")
say "image config: entrypoint /usr/bin/chat, user 65532:65532, labels: checked"

# The oci-archive (--archive) names the image chat-platform:TAG, as podman load will call it.
if [ -n "$ARCHIVE" ]; then
    if ! out=$(skopeo inspect "oci-archive:$ARCHIVE" 2>&1); then
        fail "skopeo cannot read the oci-archive $ARCHIVE: $out"
    elif ! python3 -c 'import json, sys; l = json.load(sys.stdin)["Labels"]; sys.exit(l["org.opencontainers.image.version"] != sys.argv[1])' "$TAG" <<<"$out"; then
        fail "the oci-archive's image is not version $TAG"
    elif ! tar -xOf "$ARCHIVE" index.json | grep '"org.opencontainers.image.ref.name":"chat-platform:'"$TAG"'"' >/dev/null; then
        fail "the oci-archive does not name its image chat-platform:$TAG"
    else
        say "oci-archive: $ARCHIVE readable by skopeo, image named chat-platform:$TAG"
    fi
fi

# --- the image's files -------------------------------------------------------------------
unpack=(umoci unpack)
[ "$(id -u)" -eq 0 ] || unpack+=(--rootless)
"${unpack[@]}" --image "$LAYOUT:$TAG" "$tmp/bundle" >"$tmp/unpack.log" 2>&1 ||
    { cat "$tmp/unpack.log" >&2; echo "umoci unpack failed" >&2; exit 1; }
rootfs="$tmp/bundle/rootfs"
for f in usr/bin/chat "${SERVICES[@]/#/usr/lib/chat/chat-}"; do
    [ -x "$rootfs/$f" ] || fail "/$f is missing or not executable"
done
for f in widget.js chat-sdk.mjs chat-sw.js; do
    [ -s "$rootfs/usr/share/chat/widget/$f" ] || fail "/usr/share/chat/widget/$f is missing"
done
cmp -s "$rootfs/etc/chat/topics.conf" "$root/config/topics.conf" ||
    fail "/etc/chat/topics.conf is not config/topics.conf"
[ -s "$rootfs/etc/ssl/certs/ca-certificates.crt" ] || fail "no CA bundle in /etc/ssl/certs"
[ -e "$rootfs/usr/share/zoneinfo/UTC" ] || fail "no time zone data"
grep -q '^chat:x:65532:65532:' "$rootfs/etc/passwd" || fail "no user chat (65532) in /etc/passwd"
# Nothing in the image runs a shell, so there is none; nor a package manager.
for f in bin/sh bin/bash bin/dash usr/bin/sh usr/bin/bash usr/bin/dash usr/bin/apt \
    usr/bin/dpkg usr/bin/perl usr/bin/env usr/bin/ls; do
    if [ -e "$rootfs/$f" ] || [ -L "$rootfs/$f" ]; then fail "/$f is in the image"; fi
done
setuid=$(find "$rootfs" -xdev -type f -perm /6000 | sed "s|^$rootfs||")
[ -z "$setuid" ] || fail "setuid/setgid files in the image: $setuid"
say "image files: binaries, widget, topics file, CA bundle present; no shell, no package manager, no setuid"

# --- how to run it -----------------------------------------------------------------------
runner=""
if command -v podman >/dev/null 2>&1; then
    # A private store, so the test leaves nothing in the machine's podman storage. Rlimits
    # and cgroups are left to the host where it allows no more (sandboxes, CI containers).
    podman=(podman --root "$tmp/podman/root" --runroot "$tmp/podman/run" --storage-driver vfs)
    if "${podman[@]}" pull -q "oci:$LAYOUT:$TAG" >"$tmp/podman.log" 2>&1 &&
        "${podman[@]}" run --rm --network none "oci:$LAYOUT:$TAG" --help >>"$tmp/podman.log" 2>&1; then
        runner=podman
    else
        say "podman cannot run containers here: $(grep -i error "$tmp/podman.log" | tail -n1)"
    fi
else
    say "podman is not installed"
fi
if [ -z "$runner" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        say "SKIP: no podman able to run the image and not root (chroot needs root)"
        exit 77
    fi
    runner=chroot
fi
if [ "$runner" = podman ]; then
    say "path: podman run oci:$LAYOUT:$TAG"
else
    say "path: the image unpacked with umoci, the entrypoint run in its root filesystem with chroot --userspec=65532:65532 (podman unavailable)"
fi

# in_image ARGS...: runs the image's entrypoint with ARGS as the image would (its env plus
# extra_env, user 65532, working directory /).
extra_env=()
in_image() {
    if [ "$runner" = podman ]; then
        local e envargs=()
        for e in "${extra_env[@]}"; do envargs+=(--env "$e"); done
        "${podman[@]}" run --rm --network none "${envargs[@]}" "oci:$LAYOUT:$TAG" "$@"
    else
        env -i "${image_env[@]}" "${extra_env[@]}" chroot --userspec=65532:65532 "$rootfs" \
            /usr/bin/chat "$@"
    fi
}

# Every binary's shared libraries resolve inside the image (the image's own dynamic loader
# lists them; "not found" is a missing package in deploy/image/runtime-packages.txt).
if [ "$runner" = chroot ]; then
    for f in usr/bin/chat "${SERVICES[@]/#/usr/lib/chat/chat-}"; do
        if ! out=$(chroot --userspec=65532:65532 "$rootfs" /lib64/ld-linux-x86-64.so.2 --list "/$f" 2>&1) ||
            grep -q 'not found' <<<"$out"; then
            fail "/$f: shared libraries do not resolve in the image: $(grep 'not found' <<<"$out" | xargs)"
        fi
    done
    say "shared libraries: all resolve inside the image"
fi

for svc in "${SERVICES[@]}"; do
    rc=0
    out=$(in_image "$svc" --help 2>&1) || rc=$?
    if [ "$rc" -ne 0 ]; then
        fail "chat $svc --help exited $rc: $(tail -n3 <<<"$out")"
    elif ! grep -q '^ *VARIABLE  *TYPE  *DEFAULT' <<<"$out" || ! grep -q 'CHAT_LOG_LEVEL' <<<"$out"; then
        fail "chat $svc --help did not print its configuration table"
    else
        say "chat $svc --help: exit 0, configuration table printed"
    fi
done

rc=0
out=$(in_image nosuch 2>&1) || rc=$?
if [ "$rc" -eq 2 ] && grep -q "unknown service 'nosuch'" <<<"$out"; then
    say "chat nosuch: exit 2, unknown service"
else
    fail "chat nosuch exited $rc (want 2 and 'unknown service'): $out"
fi
rc=0
out=$(in_image --help 2>&1) || rc=$?
missing=$(for svc in "${SERVICES[@]}"; do grep -q "^  $svc " <<<"$out" || echo "$svc"; done)
if [ "$rc" -ne 0 ] || [ -n "$missing" ]; then fail "chat --help exited $rc or does not list: $missing"; fi
# A service with a bad setting says which and exits non-zero (not a help text): the binary
# really starts, reads its environment and validates it.
rc=0
out=$(extra_env=(CHAT_LOG_LEVEL=loud) in_image gateway 2>&1 </dev/null) || rc=$?
if [ "$rc" -eq 0 ] || ! grep -q 'CHAT_LOG_LEVEL' <<<"$out"; then
    fail "chat gateway with CHAT_LOG_LEVEL=loud exited $rc without naming the variable: $out"
else
    say "chat gateway with a bad setting: exit $rc, names CHAT_LOG_LEVEL"
fi

if [ "$failures" -gt 0 ]; then
    say "$failures check(s) failed"
    exit 1
fi
say "ok: chat-platform:$TAG ($runner)"
