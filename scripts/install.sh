#!/usr/bin/env bash
# Installs vmkstack as a Linux network service, or removes it again: the binary, the ESX
# personality symlinks (not nc), the systemd unit, the default configuration, shell
# completions and man pages. The file list is the .deb's: [package.metadata.deb] in
# Cargo.toml, with usr/ mapped to --prefix and etc/ to --sysconfdir.
#
#   scripts/install.sh [install] [--prefix /usr/local] [--sysconfdir /etc] [--destdir DIR]
#                      [--bin PATH] [--no-user] [--no-systemctl]
#   scripts/install.sh uninstall [--prefix ...] [--sysconfdir ...] [--destdir DIR] [--purge]
#
# --bin      the binary to install (default: target/release/vmkstack, built if missing)
# --destdir  stage into DIR (also $DESTDIR), as packagers do; no user is created and systemd
#            is not told, so a test can install into a scratch root
# --no-user  do not create the `vmkstack` system user the unit runs as
# --no-systemctl  do not run systemctl (daemon-reload, disable on uninstall)
# --purge    uninstall also removes a configuration that was changed since install
#
# install writes what it added to PREFIX/share/vmkstack/install-manifest; uninstall removes
# exactly that: files, symlinks, the directories it created (when empty), the user it created
# (unless a changed configuration stays). A changed configuration is kept unless --purge.
# Files that are not ours (a real esxcfg-route, an existing configuration) are never replaced.
set -euo pipefail
cd "$(dirname "$0")/.."

action=install
prefix=/usr/local
sysconfdir=/etc
destdir=${DESTDIR:-}
bin=
make_user=1
use_systemctl=1
purge=0
while [ $# -gt 0 ]; do
  case "$1" in
    install|uninstall) action=$1 ;;
    --prefix) prefix=${2:?--prefix needs a directory}; shift ;;
    --sysconfdir) sysconfdir=${2:?--sysconfdir needs a directory}; shift ;;
    --destdir) destdir=${2:?--destdir needs a directory}; shift ;;
    --bin) bin=${2:?--bin needs a file}; shift ;;
    --no-user) make_user=0 ;;
    --no-systemctl) use_systemctl=0 ;;
    --purge) purge=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
for d in "$prefix" "$sysconfdir"; do
  case "$d" in
    /*) ;;
    *) echo "install.sh: '$d' must be an absolute path" >&2; exit 2 ;;
  esac
done
prefix=${prefix%/}
sysconfdir=${sysconfdir%/}
[ -n "$destdir" ] && destdir=$(realpath -m "$destdir")
manifest_rel=$prefix/share/vmkstack/install-manifest
manifest=$destdir$manifest_rel
# systemd is told about the unit only on a real install on a host that runs it.
systemd_live() {
  [ $use_systemctl -eq 1 ] && [ -z "$destdir" ] && [ -d /run/systemd/system ] &&
    command -v systemctl >/dev/null
}

# The plan, one line per item: `file SRC DEST MODE`, `link DEST TARGET`, `unit SRC DEST`,
# `conf SRC DEST MODE`, read from Cargo.toml's [package.metadata.deb] (python3's tomllib).
plan() {
  python3 - "$prefix" "$sysconfdir" "$bin" <<'PY'
import glob, os, sys, tomllib
prefix, sysconfdir, binary = sys.argv[1:4]
deb = tomllib.load(open("Cargo.toml", "rb"))["package"]["metadata"]["deb"]

def place(dest):
    if dest.startswith("usr/share/zsh/vendor-completions/") and prefix != "/usr":
        # zsh searches PREFIX/share/zsh/site-functions outside /usr.
        return prefix + "/share/zsh/site-functions/" + dest.split("/", 4)[4]
    if dest.startswith("usr/"):
        return prefix + "/" + dest[4:]
    if dest.startswith("etc/"):
        return sysconfdir + "/" + dest[4:]
    sys.exit(f"install.sh: no mapping for asset destination {dest}")

for a in deb["assets"]:
    if isinstance(a, dict) and "link_name" in a:
        print("link", place(a["dest"]), a["link_name"])
        continue
    src, dest, mode = (a["source"], a["dest"], a["mode"]) if isinstance(a, dict) else a
    if src == "target/release/vmkstack":
        sources = [binary]
    else:
        sources = sorted(glob.glob(src))
        if not sources:
            sys.exit(f"install.sh: asset {src} matches no file")
    for s in sources:
        d = place(dest)
        if d.endswith("/"):
            d += os.path.basename(s)
        print("conf" if dest.startswith("etc/") else "file", s, d, mode)
units = deb.get("systemd-units")
if units:
    name = units["unit-name"]
    print("unit", os.path.join(units["unit-scripts"], name + ".service"),
          prefix + "/lib/systemd/system/" + name + ".service")
PY
}

# Creates DIR (under destdir) and each missing parent, recording the ones it made.
made_dirs=()
mkdirs() {
  local d=$1 missing=()
  while [ "$d" != / ] && [ ! -d "$destdir$d" ]; do missing=("$d" "${missing[@]}"); d=$(dirname "$d"); done
  for d in "${missing[@]}"; do
    mkdir -m 0755 "$destdir$d"
    made_dirs+=("$d")
  done
}

do_install() {
  if [ -e "$manifest" ]; then
    echo "install.sh: vmkstack is already installed here ($manifest); uninstall first" >&2
    exit 1
  fi
  if [ -z "$bin" ]; then
    bin=${CARGO_TARGET_DIR:-target}/release/vmkstack
    if [ ! -x "$bin" ]; then
      echo "install.sh: building $bin"
      cargo build --release --locked
    fi
  fi
  [ -x "$bin" ] || { echo "install.sh: $bin is not an executable" >&2; exit 1; }
  [ -z "$destdir" ] || mkdir -p "$destdir"
  local items
  items=$(plan)
  # Refuse before touching anything when a file that is not ours is in the way.
  while read -r kind a b _; do
    case "$kind" in
      link) if [ -e "$destdir$a" ] || [ -L "$destdir$a" ]; then
              if [ "$(readlink "$destdir$a" 2>/dev/null)" != "$b" ]; then
                echo "install.sh: $destdir$a exists and is not our symlink; not replacing it" >&2
                exit 1
              fi
            fi ;;
      file|unit) if [ -e "$destdir$b" ]; then
              echo "install.sh: $destdir$b exists; not replacing it (uninstall first?)" >&2
              exit 1
            fi ;;
    esac
  done <<< "$items"
  local entries=() created_user=0 kind a b mode
  while read -r kind a b mode; do
    case "$kind" in
      file)
        mkdirs "$(dirname "$b")"
        install -m "$mode" "$a" "$destdir$b"
        entries+=("f $b") ;;
      unit)
        mkdirs "$(dirname "$b")"
        sed -e "s|/usr/bin/vmkstack|$prefix/bin/vmkstack|g" \
            -e "s|/etc/vmkstack|$sysconfdir/vmkstack|g" "$a" > "$destdir$b"
        chmod 0644 "$destdir$b"
        entries+=("f $b") ;;
      link)
        mkdirs "$(dirname "$a")"
        ln -sfn "$b" "$destdir$a"
        entries+=("l $a") ;;
      conf)
        mkdirs "$(dirname "$b")"
        if [ -e "$destdir$b" ]; then
          echo "install.sh: keeping the existing $destdir$b"
        else
          install -m "$mode" "$a" "$destdir$b"
          entries+=("c $b $(sha256sum < "$destdir$b" | cut -d' ' -f1)")
        fi ;;
    esac
  done <<< "$items"
  # The unit's user, owning the configuration directory (the daemon saves changes there).
  if [ $make_user -eq 1 ] && [ -z "$destdir" ] && [ "$(id -u)" -eq 0 ]; then
    if ! getent passwd vmkstack >/dev/null; then
      useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin vmkstack
      created_user=1
    fi
    chown -R vmkstack:vmkstack "$sysconfdir/vmkstack"
    chmod 0750 "$sysconfdir/vmkstack"
  fi
  mkdirs "$(dirname "$manifest_rel")"
  {
    echo "# vmkstack install manifest: scripts/install.sh uninstall removes these"
    printf '%s\n' "${entries[@]}"
    for d in "${made_dirs[@]}"; do echo "d $d"; done
    [ $created_user -eq 1 ] && echo "u vmkstack"
    echo "f $manifest_rel"
  } > "$manifest"
  if systemd_live; then systemctl daemon-reload; fi
  echo "vmkstack installed under ${destdir}${prefix} (configuration: $destdir$sysconfdir/vmkstack)"
  echo "start now and at every boot: systemctl enable --now vmkstack"
}

do_uninstall() {
  if [ ! -e "$manifest" ]; then
    echo "install.sh: no vmkstack install manifest at $manifest; nothing to remove" >&2
    exit 1
  fi
  if systemd_live && systemctl is-enabled --quiet vmkstack 2>/dev/null ||
     { systemd_live && systemctl is-active --quiet vmkstack 2>/dev/null; }; then
    systemctl disable --now vmkstack
  fi
  local dirs=() kind path sum keep_user=0 user=0
  while read -r kind path sum; do
    case "$kind" in
      f) rm -f "$destdir$path" ;;
      l) [ -L "$destdir$path" ] && rm -f "$destdir$path" ;;
      c) if [ -e "$destdir$path" ]; then
           if [ $purge -eq 1 ] || [ "$(sha256sum < "$destdir$path" | cut -d' ' -f1)" = "$sum" ]; then
             rm -f "$destdir$path"
             # What the daemon wrote beside it: the last good copy, an interrupted save.
             rm -f "$destdir$path.last-good" "$(dirname "$destdir$path")/.$(basename "$path")".tmp-*
           else
             echo "install.sh: keeping $destdir$path (changed since install; --purge removes it)"
             keep_user=1
           fi
         fi ;;
      d) dirs=("$path" "${dirs[@]}") ;;
      u) user=1 ;;
    esac
  done < <(grep -v '^#' "$manifest")
  # Directories install created, deepest first, if nothing else lives there now.
  for d in "${dirs[@]}"; do rmdir "$destdir$d" 2>/dev/null || true; done
  if [ $user -eq 1 ] && [ -z "$destdir" ]; then
    if [ $keep_user -eq 0 ]; then userdel vmkstack; else echo "install.sh: keeping user vmkstack (owns the kept configuration)"; fi
  fi
  if systemd_live; then systemctl daemon-reload; fi
  echo "vmkstack removed from ${destdir}${prefix}"
}

"do_$action"
