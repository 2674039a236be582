#!/bin/bash
# streams.sh: img-convert reading a raw disk from a pipe (xz, gzip) against the decompressor alone, and a batch of qcow images against a shell loop of qemu-img convert (make bench).
#
# Usage: t/perf/streams.sh       (make bench runs it after run.sh)
#
# Source: a raw disk of IMG_PERF_STREAM_SIZE MiB (default 2048) written by
# t/perf/gen.c (random data, zeros, holes and text by the MiB), compressed
# with xz -1 -T0 and gzip -1 (kept in the work directory). Best of
# IMG_PERF_RUNS (default 3) runs each:
#   xz -dc                 xz -dc disk.raw.xz >/dev/null
#   xz -dc | cat           xz -dc disk.raw.xz | cat >/dev/null (what the pipe
#                          itself costs: writing to /dev/null copies nothing)
#   xz -dc | img-convert   xz -dc disk.raw.xz | img-convert -f raw -O qed - out.qed
#   img-convert .xz        img-convert -O qed disk.raw.xz out.qed (libarchive, one process)
# and the same for gzip. qemu-img cannot read a pipe or a compressed file;
# its nearest way, decompressing to a file then converting, is timed too.
# Bar (PASS/FAIL, exit 1 on a FAIL): from a pipe, at most 10% slower than
# the decompressor alone.
#
# Batch: 8 qcow images of 256 MiB (the same generator), converted to QED:
#   img-convert -t         img-convert -O qed -t out -j 2 b*.qcow
#   qemu-img loop          for f in b*.qcow; do qemu-img convert -O qed $f out/...; done
# ratio reported (no bar). Every output is compared with its source
# (qemu-img compare) and checked (qemu-img check).
#
# Knobs: IMG_PERF_DIR (default t/perf/work), IMG_PERF_RUNS, IMG_PERF_STREAM_SIZE.
set -u
perf=$(cd "$(dirname "$0")" && pwd)
root=${perf%/t/perf}
W=${IMG_PERF_DIR:-$perf/work}/streams
RUNS=${IMG_PERF_RUNS:-3}
MIB=${IMG_PERF_STREAM_SIZE:-2048}
PATH=$root/cmd:$PATH

die() { echo "streams: $*" >&2; exit 1; }

mkdir -p "$W" && cd "$W" || die "cannot use $W"
cc -std=gnu11 -O2 -o gen "$perf/gen.c" || die "cannot build t/perf/gen.c"
if [ ! -f disk.raw ] || [ "$(stat -c %s disk.raw)" != $((MIB << 20)) ]; then
	rm -f disk.raw.xz disk.raw.gz
	./gen "$MIB" disk.raw >/dev/null || die "cannot make disk.raw"
fi
[ -f disk.raw.xz ] || xz -1 -T0 -k -c disk.raw >disk.raw.xz || die "xz failed"
[ -f disk.raw.gz ] || gzip -1 -c disk.raw >disk.raw.gz || die "gzip failed"
if [ ! -f b8.qcow ]; then
	./gen 256 b.raw >/dev/null || die "cannot make b.raw"
	for i in 1 2 3 4 5 6 7 8; do
		qemu-img convert -f raw -O qcow b.raw b$i.qcow || die "cannot make b$i.qcow"
	done
	rm -f b.raw
fi

# best_of CMD: the best wall time of RUNS runs of the shell command CMD
# (out* removed before each), in seconds.
best=
best_of() {
	local i t0 t1 t
	best=
	for ((i = 0; i < RUNS; i++)); do
		rm -rf out* && sync
		t0=$EPOCHREALTIME
		bash -c "set -o pipefail; $1" >/dev/null || die "failed: $1"
		t1=$EPOCHREALTIME
		t=$(echo "$t1 - $t0" | bc)
		if [ -z "$best" ] || [ "$(echo "$t < $best" | bc)" = 1 ]; then
			best=$t
		fi
	done
}

same_disk() {
	qemu-img compare -q -f raw disk.raw "$1" && qemu-img check -q "$1" ||
		die "$1 differs from disk.raw or does not check clean"
}

fail=0
row() { printf '%-34s %8.3f s  %s\n' "$1" "$2" "${3:-}"; }

echo "raw disk of $MIB MiB: $(stat -c %s disk.raw.xz) bytes as xz, $(stat -c %s disk.raw.gz) as gzip; best of $RUNS"
for z in xz gzip; do
	f=disk.raw.$([ $z = xz ] && echo xz || echo gz)
	best_of "$z -dc $f"; dec=$best
	best_of "$z -dc $f | cat"; cat=$best
	best_of "$z -dc $f | img-convert -f raw -O qed - out.qed"; pipe=$best
	$z -dc $f | img-convert -f raw -O qed - out.qed && same_disk out.qed
	best_of "img-convert -O qed $f out.qed"; direct=$best
	best_of "$z -dc $f >out.raw && qemu-img convert -f raw -O qed out.raw out.qed"; qemu=$best
	ratio=$(echo "scale=3; $pipe / $dec" | bc)
	row "$z -dc" "$dec"
	row "$z -dc | cat" "$cat" "x$(echo "scale=3; $cat / $dec" | bc) of $z -dc alone"
	row "$z -dc | img-convert -O qed -" "$pipe" "x$ratio of $z -dc alone"
	row "img-convert -O qed $f" "$direct"
	row "$z -dc >file; qemu-img convert" "$qemu" "x$(echo "scale=2; $qemu / $pipe" | bc) our pipe's time"
	if [ "$(echo "$pipe <= $dec * 1.10" | bc)" = 1 ]; then
		echo "PASS: from a $z pipe within 10% of $z -dc alone (x$ratio)"
	else
		echo "FAIL: from a $z pipe more than 10% slower than $z -dc alone (x$ratio)"
		fail=1
	fi
done
rm -rf out*

echo "batch: 8 qcow images of 256 MiB to QED"
best_of "mkdir out && img-convert -O qed -t out -j 2 b?.qcow"; ours=$best
rm -rf out && mkdir out && img-convert -O qed -t out -j 2 b?.qcow >/dev/null ||
	die "batch failed"
for i in 1 2 3 4 5 6 7 8; do
	qemu-img compare -q b$i.qcow out/b$i.qed && qemu-img check -q out/b$i.qed ||
		die "out/b$i.qed differs from b$i.qcow or does not check clean"
done
best_of "mkdir out && for f in b?.qcow; do qemu-img convert -O qed \$f out/\${f%.qcow}.qed || exit 1; done"; theirs=$best
row "img-convert -t out -j 2" "$ours"
row "qemu-img convert loop" "$theirs" "x$(echo "scale=2; $theirs / $ours" | bc) ours"
rm -rf out*
exit $fail
