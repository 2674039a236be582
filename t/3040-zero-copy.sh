#!/bin/sh
# 3040-zero-copy.sh: on XFS and btrfs, conversions share stored clusters with their source and relocations do not write them again; on ext4 the kernel copies them; every mode gives the same image.
test_description='zero-copy conversion and relocation on loop-mounted XFS, btrfs and ext4'
. "$(dirname "$0")/lib-fs.sh"
# A run that died may have left its file systems mounted in the trash.
fs_unmount_under "$(dirname "$0")/trash.3040-zero-copy"
. "$(dirname "$0")/lib.sh"
trap 'cd "$TEST_DIRECTORY" && fs_unmount_under "$TRASH_DIRECTORY"' EXIT

cc -O2 -o maxrss "$TEST_DIRECTORY/perf/maxrss.c" || skip_all 'cannot build t/perf/maxrss.c'

# One file system of each kind; a kind that cannot be mounted here skips
# its tests, saying why.
for fs in xfs btrfs ext4; do
	if fs_mount $fs "$fs" 1G; then
		test_set_prereq "$fs"
	else
		echo "# $fs tests skip: $fs_why"
	fi
done

# written_by FILE COMMAND...: run COMMAND; FILE gets the bytes it dirtied.
written_by() {
	wb_out_=$1
	shift
	"$TRASH_DIRECTORY/maxrss" -w "$wb_out_" /dev/null "$@"
}

# make_sources DIR: src.qcow2 with plain data, stored zeros, zero
# clusters, a compressed cluster and a partial cluster; src.qcow (4 KiB
# clusters), src.qed and src.raw converted from it by qemu-img; a
# checksum of each.
make_sources() {
	(cd "$1" &&
	qemu-img create -q -f qcow2 src.qcow2 64M &&
	qio qcow2 src.qcow2 "write -P 0x11 0 4M" "write -P 0 4M 1M" \
		"write -z 6M 1M" "write -P 0x22 8M 16M" \
		"write -c -P 0x33 32M 64k" "write -P 0x44 40M 100k" &&
	qemu-img convert -O qcow src.qcow2 src.qcow &&
	qemu-img convert -O qed src.qcow2 src.qed &&
	qemu-img convert -O raw src.qcow2 src.raw &&
	md5sum src.qcow2 src.qcow src.qed src.raw >src.md5)
}

# raw_holes FILE: the raw FILE has holes over the source's stored zeros
# (4M..5M) and zero clusters (6M..7M): all of it zero, none of it data.
raw_holes() {
	qemu-img map --output=json -f raw "$1" | perl -MJSON::PP -0 -ne '
		for my $r ([4 << 20, 5 << 20], [6 << 20, 7 << 20]) {
			for (@{decode_json($_)}) {
				next if $_->{start} + $_->{length} <= $r->[0] ||
					$_->{start} >= $r->[1];
				exit 1 if $_->{data};
			}
		}'
}

# converts_same DIR SRC DST: in DIR, img-convert from SRC to DST format by
# default (out.DST) and with --copy-mode=read-write (rw.DST): the two
# files are identical (zero clusters found alike; raw: the same bytes, and
# holes where the source stores zeros), the image reads as the source and
# passes qemu-img check.
converts_same() {
	(cd "$1" &&
	rm -f out.$3 rw.$3 &&
	img-convert -f $2 -O $3 src.$2 out.$3 &&
	img-convert --copy-mode=read-write -f $2 -O $3 src.$2 rw.$3 &&
	cmp out.$3 rw.$3 &&
	{ test $3 != raw || raw_holes out.raw; } &&
	qemu-img compare -q src.$2 out.$3 &&
	case $3 in qcow|raw) ;; *) qemu-img check -q out.$3 ;; esac)
}

for fs in xfs btrfs ext4; do
	test_expect_success $fs "$fs: sources made by qemu-img" '
		make_sources $fs
	'
	for pair in "qcow2 qed" "qcow qed" "qed qcow2" "qcow2 qcow2" \
		    "qcow2 qcow" "qed qed" "raw qcow2" "qcow2 raw" "qcow raw"; do
		set -- $pair
		test_expect_success $fs "$fs: $1 -> $2 reads the same, as read-write makes it" "
			converts_same $fs $1 $2 &&
			if test $fs = ext4; then
				! fs_shared $fs/out.$2
			else
				fs_shared $fs/out.$2 && ! fs_shared $fs/rw.$2
			fi
		"
	done
	test_expect_success $fs "$fs: -S 0 and -n into a written image give what read-write gives" '
		(cd $fs &&
		rm -f s0.qcow2 s0rw.qcow2 &&
		img-convert -S 0 -O qcow2 src.qcow s0.qcow2 &&
		img-convert -S 0 --copy-mode=read-write -O qcow2 src.qcow s0rw.qcow2 &&
		cmp s0.qcow2 s0rw.qcow2 &&
		qemu-img compare -q src.qcow s0.qcow2 &&
		qemu-img create -q -f qcow2 n.qcow2 64M &&
		qio qcow2 n.qcow2 "write -P 0x77 0 64M" &&
		img-convert -n -O qcow2 src.qcow n.qcow2 &&
		qemu-img compare -q src.qcow n.qcow2 &&
		qemu-img check -q n.qcow2 &&
		qemu-img create -q -f raw n.raw 64M &&
		qio raw n.raw "write -P 0x77 0 64M" &&
		img-convert -n src.qcow2 n.raw &&
		qemu-img compare -q src.qcow2 n.raw)
	'
	test_expect_success $fs "$fs: writing to the output leaves the source as it was" '
		(cd $fs &&
		qio qed out.qed "write -P 0x99 0 8M" &&
		md5sum -c --quiet src.md5 &&
		qemu-io -f qed -r -c "read -P 0x99 0 8M" out.qed >read.out &&
		! grep -q "Pattern verification failed" read.out &&
		qemu-io -f qcow2 -r -c "read -P 0x11 0 4M" src.qcow2 >read.out &&
		! grep -q "Pattern verification failed" read.out)
	'
	test_expect_success $fs "$fs: a conversion dirties at most 5% of what it stores (the tables)" '
		(cd $fs &&
		rm -f wb.qed &&
		written_by wb.out img-convert -O qed src.qcow wb.qed &&
		written_by rw.out img-convert --copy-mode=read-write -O qed src.qcow rw2.qed &&
		echo "auto $(cat wb.out) read-write $(cat rw.out)" &&
		test $(cat rw.out) -ge $((20 * 1024 * 1024)) &&
		qemu-img compare -q src.qcow wb.qed &&
		# on ext4, copy_file_range dirties the page cache as we would;
		# elsewhere only the tables and a partial cluster are written
		if test $fs != ext4; then
			test $(($(cat wb.out) * 20)) -le $(cat rw.out)
		fi)
	'
	test_expect_success $fs "$fs: --copy-mode=copy and =reflink" '
		(cd $fs &&
		rm -f cp.qed rl.qed ref.qed &&
		img-convert --copy-mode=read-write -O qed src.qcow2 ref.qed &&
		img-convert --copy-mode=copy -O qed src.qcow2 cp.qed &&
		cmp cp.qed ref.qed &&
		if test $fs = ext4; then
			test_expect_code 1 img-convert --copy-mode=reflink -O qed src.qcow2 rl.qed 2>err &&
			grep -F "img-convert: cannot convert '\''src.qcow2'\'' to '\''rl.qed'\'': cannot share data with '\''src.qcow2'\'': Operation not supported" err &&
			! test -e rl.qed &&
			test "$(ls -a | grep -c "^\.")" -le 2
		else
			img-convert --copy-mode=reflink -O qed src.qcow2 rl.qed &&
			cmp rl.qed ref.qed && fs_shared rl.qed
		fi)
	'
	test_expect_success $fs "$fs: img-compact moves 16 MiB down without writing it" '
		(cd $fs &&
		qemu-img create -q -f qcow2 zf.qcow2 64M &&
		qio qcow2 zf.qcow2 "write -P 0 0 16M" "write -P 0x55 16M 16M" &&
		cp zf.qcow2 zf.before &&
		written_by wb.out img-compact zf.qcow2 >out &&
		grep "File size: 32.3 MiB -> 16.3 MiB" out &&
		echo "img-compact dirtied $(cat wb.out) bytes" &&
		qemu-img check -q zf.qcow2 &&
		qemu-img compare -q zf.before zf.qcow2 &&
		if test $fs != ext4; then
			test $(cat wb.out) -le $((2 * 1024 * 1024))
		fi)
	'
	test_expect_success $fs "$fs: img-check -r leaks relocates data into leaked clusters without writing it" '
		(cd $fs &&
		qemu-img create -q -f qed lk.qed 64M &&
		qio qed lk.qed "write -P 0x66 0 2M" "write -P 0x77 32M 4M" &&
		l2=$(img-poke lk.qed $((0x10000)) read le64) &&
		for i in $(seq 0 31); do
			img-poke lk.qed $((l2 + i * 8)) le64 0 || return 1
		done &&
		cp lk.qed lk.before &&
		written_by wb.out img-check -r leaks lk.qed >out 2>err &&
		grep -F "Relocated data clusters (32 clusters)" err &&
		echo "img-check -r leaks dirtied $(cat wb.out) bytes" &&
		qemu-img check -q lk.qed &&
		qemu-img compare -q lk.before lk.qed &&
		if test $fs != ext4; then
			test $(cat wb.out) -le $((512 * 1024))
		fi)
	'
done

# A file system too small for the output: the kernel copy fails like a
# write would, and nothing is left behind. (Messages go outside it: a
# full file system cannot take them either.)
if fs_mount ext4 small 24M; then
	test_set_prereq SMALL
else
	echo "# small ext4 test skips: $fs_why"
fi
test_expect_success SMALL 'a full file system: one line naming the output, no debris' '
	cp ext4/src.qcow small/ &&
	printf "%s\n" lost+found src.qcow >small.want &&
	(cd small &&
	test_expect_code 1 img-convert -O qed src.qcow out.qed 2>../small.err &&
	grep -x "img-convert: cannot convert '\''src.qcow'\'' to '\''out.qed'\'': cannot write data clusters at 0x[0-9a-f]*: No space left on device" ../small.err &&
	ls -A >../small.ls && test_cmp ../small.want ../small.ls &&
	test_expect_code 1 img-convert -O raw src.qcow out.raw 2>../small.err &&
	grep -x "img-convert: cannot convert '\''src.qcow'\'' to '\''out.raw'\'': cannot write output: No space left on device" ../small.err &&
	ls -A >../small.ls && test_cmp ../small.want ../small.ls)
'

cd "$TEST_DIRECTORY" && fs_unmount_under "$TRASH_DIRECTORY"
test_done
