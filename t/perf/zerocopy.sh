#!/bin/bash
# zerocopy.sh: qcow->QED conversion and compaction on loop-mounted XFS (reflink) and ext4, against cp and qemu-img convert -C, with bytes dirtied (make bench; root).
#
# Usage: t/perf/zerocopy.sh       (make bench runs it after run.sh)
#
# Source: a 512 MiB disk from t/perf/zfill.c's layout (half random data,
# half zeros), converted by qemu-img to qcow (256 MiB stored) and, fully
# allocated (-S 0), to qcow2 for the compaction job. On each file system,
# best of IMG_PERF_RUNS (default 5) runs after a warm-up, the output
# removed and the file system synced before each run:
#   cp                 cp --reflink=always (XFS) or cp (ext4: copy_file_range)
#   img-convert        img-convert -O qed (default --copy-mode=auto)
#   img-convert -rw    img-convert --copy-mode=read-write -O qed (as before)
#   qemu-img -C        qemu-img convert -C -O qed (copy offloading)
#   qemu-img           qemu-img convert -O qed
#   img-compact        img-compact on a fresh copy of the fully allocated qcow2
# "dirtied" is the command's write_bytes (t/perf/maxrss.c -w). Every output
# must compare identical to the source (qemu-img compare) and pass
# qemu-img check. Bars (PASS/FAIL lines, exit 1 on a FAIL): on XFS,
# img-convert within 2x cp --reflink plus 50 ms, at least 10x faster than
# qemu-img -C, dirtying at most 5% of the stored bytes; on ext4 no slower
# than img-convert -rw (within 10%); img-compact on XFS dirtying at most
# 2 MiB.
#
# Knobs: IMG_PERF_DIR (default t/perf/work), IMG_PERF_RUNS.
set -u
perf=$(cd "$(dirname "$0")" && pwd)
root=${perf%/t/perf}
W=${IMG_PERF_DIR:-$perf/work}/zerocopy
RUNS=${IMG_PERF_RUNS:-5}
PATH=$root/cmd:$PATH
. "$root/t/lib-fs.sh"

die() { echo "zerocopy: $*" >&2; exit 1; }

mkdir -p "$W" || die "cannot make $W"
fs_unmount_under "$W"
trap 'cd / && fs_unmount_under "$W"' EXIT
for t in maxrss zfill; do
	cc -O2 -o "$W/$t" "$perf/$t.c" || die "cannot build t/perf/$t.c"
done
if [ ! -f "$W/src.qcow" ] || [ ! -f "$W/zf.qcow2" ]; then
	"$W/zfill" 512 "$W/src.raw" &&
	qemu-img convert -f raw -O qcow "$W/src.raw" "$W/src.qcow" &&
	qemu-img convert -f raw -O qcow2 -S 0 "$W/src.raw" "$W/zf.qcow2" &&
	rm -f "$W/src.raw" || die "cannot make the sources"
fi

# best CMD...: the best wall time of RUNS runs in seconds (out.* removed
# and the file system synced before each); the first, untimed, run's
# write_bytes go to $W/wb.
best=
best_of() {
	local i t0 t1 t
	rm -f out.* && sync && "$W/maxrss" -w "$W/wb" /dev/null "$@" >/dev/null ||
		die "failed: $*"
	best=
	for ((i = 0; i < RUNS; i++)); do
		rm -f out.* && sync
		t0=$EPOCHREALTIME
		"$@" >/dev/null || die "failed: $*"
		t1=$EPOCHREALTIME
		t=$(echo "$t1 - $t0" | bc -l)
		if [ -z "$best" ] || [ "$(echo "$t < $best" | bc -l)" = 1 ]; then
			best=$t
		fi
	done
}

mib() { printf '%.1f' "$(echo "$1 / 1048576" | bc -l)"; }
sec() { printf '%.3f' "$1"; }

declare -A T WB
fails=0
row() {   # fs job
	printf '    %-5s %-16s %9.4f  %9s\n' "$1" "$2" "${T[$1,$2]}" \
		"$(mib "${WB[$1,$2]}")"
}
bar() {   # description, condition for bc
	if [ "$(echo "$2" | bc -l)" = 1 ]; then
		echo "    PASS $1"
	else
		echo "    FAIL $1"
		fails=$((fails + 1))
	fi
}
measure() {   # fs job command...
	local fs=$1 job=$2
	shift 2
	best_of "$@"
	T[$fs,$job]=$best
	WB[$fs,$job]=$(cat "$W/wb")
}

stored=$(qemu-img map --output=json -f qcow "$W/src.qcow" |
	 perl -MJSON::PP -0 -ne 'my $t = 0; $t += $_->{length} for grep { $_->{data} } @{decode_json($_)}; print $t')
echo "zerocopy: 512 MiB qcow with $(mib "$stored") MiB stored; best of $RUNS"
echo
printf '    %-5s %-16s %9s  %9s\n' fs job 'time(s)' 'dirtied MiB'
for fs in xfs ext4; do
	if ! fs_mount $fs "$W/$fs" 3G; then
		echo "    $fs: skipped: $fs_why"
		continue
	fi
	cd "$W/$fs" || die "cannot enter $W/$fs"
	cp "$W/src.qcow" src.qcow && cp "$W/zf.qcow2" zf.qcow2 && sync ||
		die "cannot copy the sources to $fs"
	if [ $fs = xfs ]; then
		measure $fs cp cp --reflink=always src.qcow out.qcow
	else
		measure $fs cp cp src.qcow out.qcow
	fi
	measure $fs img-convert img-convert -O qed src.qcow out.qed
	qemu-img compare -q src.qcow out.qed && qemu-img check -q out.qed ||
		die "img-convert output on $fs differs from its source"
	measure $fs img-convert-rw img-convert --copy-mode=read-write -O qed src.qcow out.qed
	measure $fs qemu-img-C qemu-img convert -C -O qed src.qcow out.qed
	measure $fs qemu-img qemu-img convert -O qed src.qcow out.qed
	# compaction: a fresh copy each run, made before the clock starts
	cp zf.qcow2 zf.before
	best=
	for ((i = 0; i <= RUNS; i++)); do
		rm -f out.* && cp --reflink=auto zf.before out.qcow2 && sync
		t0=$EPOCHREALTIME
		if [ $i = 0 ]; then
			"$W/maxrss" -w "$W/wb" /dev/null img-compact out.qcow2 >/dev/null
		else
			img-compact out.qcow2 >/dev/null
		fi || die "img-compact failed on $fs"
		t=$(echo "$EPOCHREALTIME - $t0" | bc -l)
		if [ $i = 0 ]; then
			WB[$fs,img-compact]=$(cat "$W/wb")
			qemu-img compare -q zf.before out.qcow2 &&
			qemu-img check -q out.qcow2 ||
				die "img-compact on $fs changed the image"
		elif [ -z "$best" ] || [ "$(echo "$t < $best" | bc -l)" = 1 ]; then
			best=$t
		fi
	done
	T[$fs,img-compact]=$best
	for job in cp img-convert img-convert-rw qemu-img-C qemu-img img-compact; do
		row $fs $job
	done
	cd "$W" && fs_unmount_under "$W"
done
echo
if [ -n "${T[xfs,cp]:-}" ]; then
	bar "XFS: img-convert within 2x cp --reflink + 50 ms ($(sec ${T[xfs,img-convert]}) s vs $(sec ${T[xfs,cp]}) s)" \
		"${T[xfs,img-convert]} <= 2 * ${T[xfs,cp]} + 0.05"
	bar "XFS: img-convert at least 10x faster than qemu-img -C ($(printf %.1f "$(echo "${T[xfs,qemu-img-C]} / ${T[xfs,img-convert]}" | bc -l)")x)" \
		"${T[xfs,qemu-img-C]} >= 10 * ${T[xfs,img-convert]}"
	bar "XFS: img-convert dirties at most 5% of the stored bytes ($(mib "${WB[xfs,img-convert]}") MiB)" \
		"${WB[xfs,img-convert]} <= 0.05 * $stored"
	bar "XFS: img-compact dirties at most 2 MiB ($(mib "${WB[xfs,img-compact]}") MiB)" \
		"${WB[xfs,img-compact]} <= 2 * 1048576"
fi
if [ -n "${T[ext4,cp]:-}" ]; then
	bar "ext4: img-convert no slower than read-write ($(sec ${T[ext4,img-convert]}) s vs $(sec ${T[ext4,img-convert-rw]}) s)" \
		"${T[ext4,img-convert]} <= 1.1 * ${T[ext4,img-convert-rw]}"
fi
[ $fails = 0 ]
