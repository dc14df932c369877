# SPDX-License-Identifier: MIT
# Chroots for the platform scripts (matrix.sh, deb.sh), sourced by bash:
# every mount is recorded and undone by umount_all, which the sourcing script
# calls from its EXIT/INT/TERM traps; mounts left by a run killed with
# SIGKILL (no trap ran) are undone before the next mount or removal.
#   mount_chroot ROOT     /proc, /dev, /dev/pts, /dev/shm; then the script's
#                         chroot_prepare ROOT, if it defines one
#   in_root ROOT CMD...   a shell command line in the chroot, clean environment
#   remove_root ROOT      rm -rf, never while something is mounted in it
#   umount_all            undoes every mount, kills what still runs inside
# chroot_who names the script in messages.
chroot_who=${chroot_who:-$(basename "$0")}
mounts=()
cur_root=""
bg_pid=""
kill_inside() { # kills what still runs inside a chroot (a child a test left behind), by pid
  local root=$1 p link
  for p in /proc/[0-9]*; do
    link=$(readlink "$p/root" 2>/dev/null) || continue
    if [ "$link" = "$root" ]; then kill -KILL "${p#/proc/}" 2>/dev/null || true; fi
  done
}
umount_stale() { # whatever is mounted under ROOT (debootstrap's own /proc, a SIGKILLed run's)
  local m
  for m in $(findmnt -rn -o TARGET | grep -F "$1/" | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
}
umount_all() {
  local i
  if [ -n "$bg_pid" ]; then kill -TERM "$bg_pid" 2>/dev/null || true; fi
  bg_pid=""
  [ -n "$cur_root" ] && kill_inside "$cur_root"
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
    umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" 2>/dev/null ||
      echo "$chroot_who: could not unmount ${mounts[i]}" >&2
  done
  mounts=()
  [ -n "$cur_root" ] && umount_stale "$cur_root"
  cur_root=""
}
remove_root() {
  umount_stale "$1"
  if findmnt -rn -o TARGET | grep -qF "$1/"; then
    echo "$chroot_who: still mounted under $1; not removing it" >&2
    exit 1
  fi
  rm -rf "$1"
}
mount_chroot() {
  local root=$1
  umount_stale "$root"
  cur_root=$root
  mkdir -p "$root/proc" "$root/dev" "$root/dev/pts" "$root/dev/shm"
  mount -t proc proc "$root/proc" && mounts+=("$root/proc")
  mount --bind /dev "$root/dev" && mounts+=("$root/dev")
  mount --make-rslave "$root/dev" 2>/dev/null || true
  mount --bind /dev/pts "$root/dev/pts" && mounts+=("$root/dev/pts")
  mount --bind /dev/shm "$root/dev/shm" && mounts+=("$root/dev/shm")
  if declare -F chroot_prepare >/dev/null; then chroot_prepare "$root"; fi
}
in_root() {
  local root=$1 pid
  shift
  # In the background and waited for: bash runs a trap only when the
  # foreground command ends, but interrupts `wait` at once (INT, TERM).
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 LANG=C.UTF-8 CI=${CI:-} TERM=dumb \
    chroot "$root" /bin/sh -c "$*" </dev/null &
  pid=$!
  bg_pid=$pid
  wait "$pid"
}
now() { date +%s; }
