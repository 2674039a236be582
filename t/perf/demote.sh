#!/bin/bash
# demote.sh: img-demote against qemu-img on the cases issue 14 names: an 8 GiB qcow2 v3 with 100,000 zero clusters (qemu-img amend -o compat=0.10), and a zstd image with compressed clusters (amend refuses: qemu-img convert -O qcow2 -o compat=0.10) (make bench).
#
# Usage: t/perf/demote.sh
#
# Images (in IMG_PERF_DIR/demote, default t/perf/work/demote): zero.qcow2,
# 8 GiB, 100,000 zero clusters (qemu-io zero writes over 6250 MiB,
# after a 4 KiB write in each 512 MiB so that the L2 tables exist: QEMU
# marks zeros only there) and 64 MiB of data; zstd.qcow2, 256 MiB of compressible text and random
# data written compressed with zstd. Each run works on a fresh copy (not
# timed), best of IMG_PERF_RUNS (default 3). Every result must pass
# qemu-img check, say compat 0.10 and compare identical to the source.
# Bars (PASS/FAIL, exit 1 on a FAIL): img-demote no slower than qemu-img
# amend on zero.qcow2, nor than qemu-img convert -c on zstd.qcow2 (within
# 10%): both then deflate every cluster with zlib. The ratio against the
# plain convert (whose output is not compressed, and much larger) is
# reported.
set -u
perf=$(cd "$(dirname "$0")" && pwd)
root=${perf%/t/perf}
W=${IMG_PERF_DIR:-$perf/work}/demote
RUNS=${IMG_PERF_RUNS:-3}
PATH=$root/cmd:$PATH
mkdir -p "$W" && cd "$W" || exit 1

now() { date +%s.%N; }

# best CMD...: the best wall time of RUNS runs of CMD on a fresh run.qcow2
# (copied from $src before each run, untimed).
best() {
	b_best=
	for _ in $(seq "$RUNS"); do
		cp "$src" run.qcow2 && sync || return 1
		b_t0=$(now)
		"$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; return 1; }
		b_t=$(echo "$(now) - $b_t0" | bc)
		if test -z "$b_best" || test "$(echo "$b_t < $b_best" | bc)" = 1; then
			b_best=$b_t
		fi
	done
	echo "$b_best"
}

verify() {
	qemu-img check -q "$1" &&
	qemu-img info "$1" | grep -q "compat: 0.10" &&
	qemu-img compare -q "$src" "$1"
}

if ! test -f zero.qcow2; then
	# a zero write marks clusters only in L2 tables that exist: one
	# small write in each 512 MiB an L2 table maps first
	qemu-img create -q -f qcow2 zero.qcow2 8G &&
	{ for i in $(seq 0 12); do echo "write -P 1 $((i * 512))M 4k"; done
	  echo "write -P 7 7G 64M"
	  # 100,000 clusters = 6250 MiB, in requests qemu-io takes (< 2 GiB)
	  for i in 0 1 2 3 4 5; do echo "write -z ${i}G 1G"; done
	  echo "write -z 6G 106M"; } | qemu-io zero.qcow2 >/dev/null
	# (qemu-io reading commands from a pipe exits 1 at its end)
fi
n=$(img-demote --list --output=json zero.qcow2 |
	perl -MJSON::PP -e 'local $/; my $d = JSON::PP->new->decode(<STDIN>);
		for (@{$d->{features}}) { print $_->{entries} if $_->{name} eq "zero-clusters" }')
echo "zero.qcow2: 8 GiB, $n zero clusters"
test "${n:-0}" -ge 100000 || { echo "zero.qcow2: too few zero clusters" >&2; exit 1; }
src=zero.qcow2
ours=$(best img-demote -q run.qcow2) && verify run.qcow2 || exit 1
theirs=$(best qemu-img amend -o compat=0.10 run.qcow2) && verify run.qcow2 || exit 1
ratio=$(echo "scale=2; $theirs / $ours" | bc)
printf '  img-demote %8.3f s   qemu-img amend %8.3f s   ratio %sx\n' "$ours" "$theirs" "$ratio"
rc=0
if test "$(echo "$ours <= $theirs * 1.10" | bc)" = 1; then
	echo "PASS img-demote no slower than qemu-img amend"
else
	echo "FAIL img-demote slower than qemu-img amend"
	rc=1
fi

if ! test -f zstd.qcow2; then
	{ for _ in $(seq 2048); do
		head -c 65536 /dev/urandom | od -An -tx1 | head -c 65536
		head -c 65536 /dev/urandom
	done; } >zstd.raw &&
	qemu-img convert -q -c -f raw -O qcow2 -o compression_type=zstd zstd.raw zstd.qcow2 &&
	rm -f zstd.raw || exit 1
fi
echo "zstd.qcow2: 256 MiB, $(qemu-img check --output=json zstd.qcow2 | perl -MJSON::PP -e 'local $/; print JSON::PP->new->decode(<STDIN>)->{"compressed-clusters"}') compressed clusters"
src=zstd.qcow2
ours=$(best img-demote -q run.qcow2) && verify run.qcow2 || exit 1
theirs=$(best qemu-img convert -O qcow2 -o compat=0.10 run.qcow2 out.qcow2) &&
	verify out.qcow2 || exit 1
ratio=$(echo "scale=2; $theirs / $ours" | bc)
printf '  img-demote %8.3f s   qemu-img convert %8.3f s   ratio %sx (its output is not compressed)\n' "$ours" "$theirs" "$ratio"
theirs=$(best qemu-img convert -c -O qcow2 -o compat=0.10 run.qcow2 out.qcow2) &&
	verify out.qcow2 || exit 1
ratio=$(echo "scale=2; $theirs / $ours" | bc)
printf '  img-demote %8.3f s   qemu-img convert -c %8.3f s   ratio %sx (both compress with zlib)\n' "$ours" "$theirs" "$ratio"
if test "$(echo "$ours <= $theirs * 1.10" | bc)" = 1; then
	echo "PASS img-demote no slower than qemu-img convert -c"
else
	echo "FAIL img-demote slower than qemu-img convert -c"
	rc=1
fi
rm -f run.qcow2 out.qcow2
exit $rc
