# lib-fs.sh: small file systems in loop-mounted files, for the zero-copy tests and benchmarks (sourced; needs root).

# fs_mount TYPE DIR [SIZE]: make a TYPE (xfs with reflink, btrfs, ext4)
# file system of SIZE (default 512M, sparse) in DIR.img, mount it on DIR. On failure, fs_why says why in a
# few words (for a skip reason) and nothing stays mounted.
fs_mount() {
	fs_why=
	if [ "$(id -u)" != 0 ]; then
		fs_why="not root: cannot mount a loop device"; return 1
	fi
	case $1 in
	xfs) fs_mkfs_="mkfs.xfs -q -f -m reflink=1" ;;
	btrfs) fs_mkfs_="mkfs.btrfs -q -f" ;;
	ext4) fs_mkfs_="mkfs.ext4 -q -F" ;;
	*) fs_why="unknown file system $1"; return 1 ;;
	esac
	if ! command -v "${fs_mkfs_%% *}" >/dev/null 2>&1; then
		fs_why="${fs_mkfs_%% *} is not installed"; return 1
	fi
	mkdir -p "$2" && rm -f "$2.img" && truncate -s "${3:-512M}" "$2.img" ||
		{ fs_why="cannot make $2.img"; return 1; }
	if ! $fs_mkfs_ "$2.img" >"$2.mkfs" 2>&1; then
		fs_why="${fs_mkfs_%% *} failed: $(head -1 "$2.mkfs")"; return 1
	fi
	if ! mount -o loop "$2.img" "$2" 2>"$2.mount"; then
		fs_why="cannot loop-mount $1: $(head -1 "$2.mount")"; return 1
	fi
}

# fs_unmount_under DIR: unmount every file system mounted below DIR
# (a run that died may have left some).
fs_unmount_under() {
	fs_dir_=$(cd "$1" 2>/dev/null && pwd -P) || return 0
	awk -v d="$fs_dir_/" 'index($2, d) == 1 { print $2 }' /proc/mounts |
	sort -r | while read -r fs_m_; do
		umount "$fs_m_" || umount -l "$fs_m_"
	done
}

# fs_shared FILE: filefrag says some extent of FILE is shared.
fs_shared() {
	filefrag -v "$1" | grep -q shared
}
