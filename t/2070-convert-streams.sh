#!/bin/sh
# 2070-convert-streams.sh: sources from pipes, FIFOs, compressed files and archives are unpacked and read; a truncated or corrupt one is one line of error and no output.
test_description='pipes, compressed files and archives as sources'
. "$(dirname "$0")/lib.sh"

# disk.raw: data, zeros, a hole; the same disk as qcow2, QED and qcow.
test_expect_success 'sources' '
	qemu-img create -q -f raw disk.raw 8M &&
	qio raw disk.raw "write -P 0x61 0 1M" "write -P 0x62 3M 512k" &&
	for f in qcow2 qed qcow; do
		qemu-img convert -O $f disk.raw disk.$f || return 1
	done
'

# reads_as FILE FMT REF: FILE is an image of format FMT reading as REF.
reads_as() {
	qemu-img compare -q -f "$2" "$1" disk.raw &&
	qemu-img info --output=json "$1" >ra.json &&
	test "$(json_get ra.json format)" = "format=$2"
}

test_expect_success 'a raw disk from a pipe (-, /dev/stdin), to every format' '
	for f in raw qcow2 qed qcow; do
		cat disk.raw | img-convert -O $f - out.$f &&
		reads_as out.$f $f &&
		rm out.$f || return 1
	done &&
	cat disk.raw | img-convert -O qcow2 /dev/stdin out.qcow2 2>err &&
	reads_as out.qcow2 qcow2 &&
	test ! -s err
'

test_expect_success 'a FIFO source is read as its writer writes it' '
	mkfifo in.fifo &&
	{ cat disk.qcow2 >in.fifo & } &&
	img-convert -O qed in.fifo out.qed 2>err &&
	wait &&
	reads_as out.qed qed &&
	grep -x "img-convert: '\''in.fifo'\'' (a pipe) holds a qcow2 image: read through a temporary file in ${TMPDIR:-/tmp}" err
'

test_expect_success 'images from a pipe: qcow2, QED, qcow, a line on stderr saying so' '
	for f in qcow2 qed qcow; do
		cat disk.$f | img-convert -O raw - out.raw 2>err &&
		cmp disk.raw out.raw &&
		grep -x "img-convert: '\''-'\'' (a pipe) holds a $f image: read through a temporary file in ${TMPDIR:-/tmp}" err &&
		test_line_count = 1 err || return 1
	done &&
	cat disk.qcow2 | img-info - >info &&
	grep -x "file format: qcow2" info &&
	cat disk.qed | img-map --output=json - >map.json &&
	qemu-img map --output=json disk.qed >qmap.json &&
	test_cmp qmap.json map.json
'

test_expect_success 'compressed files and pipes: gzip, xz, zstd, bzip2, lz4' '
	for c in gzip xz zstd bzip2 lz4; do
		$c -c disk.raw >disk.raw.$c &&
		img-convert -O qed disk.raw.$c out.qed 2>err &&
		reads_as out.qed qed && test ! -s err &&
		$c -c disk.raw | img-convert -O qcow2 - out.qcow2 &&
		reads_as out.qcow2 qcow2 &&
		$c -c disk.qcow2 | img-convert -O raw - out.raw 2>err &&
		cmp disk.raw out.raw &&
		grep "holds a qcow2 image" err &&
		rm -f out.qed out.qcow2 out.raw || return 1
	done &&
	img-info --output=json disk.raw.xz >info.json &&
	json_get info.json virtual-size >size &&
	echo virtual-size=8388608 >want && test_cmp want size
'

test_expect_success 'a compressed file is never read as a raw disk, even with -f raw' '
	img-convert -f raw -O raw disk.raw.gzip out.raw &&
	cmp disk.raw out.raw
'

test_expect_success 'archives: tar, tar.gz, zip, cpio, 7z; the only disk, or --member' '
	echo notes >notes.txt &&
	tar cf one.tar disk.qcow2 &&
	img-convert -O raw one.tar out.raw 2>err && cmp disk.raw out.raw &&
	grep -x "img-convert: '\''one.tar'\'' (tar member '\''disk.qcow2'\'') holds a qcow2 image: read through a temporary file in ${TMPDIR:-/tmp}" err &&
	tar czf two.tgz notes.txt disk.qed &&
	img-convert -O raw two.tgz out.raw 2>err && cmp disk.raw out.raw &&
	zip -q three.zip notes.txt disk.raw disk.qcow &&
	img-convert -O raw --member disk.qcow three.zip out.raw && cmp disk.raw out.raw &&
	img-convert -O raw --member disk.raw three.zip out.raw && cmp disk.raw out.raw &&
	echo disk.qed | cpio -o -H newc --quiet >four.cpio &&
	img-convert -O raw four.cpio out.raw && cmp disk.raw out.raw &&
	7z a -bd -bso0 five.7z disk.qcow2 notes.txt &&
	img-convert -O raw five.7z out.raw && cmp disk.raw out.raw &&
	cat two.tgz | img-convert -O qcow2 --member disk.qed - out.qcow2 &&
	reads_as out.qcow2 qcow2
'

test_expect_success 'a sparse tar member keeps its holes' '
	tar --sparse -cf sparse.tar disk.raw &&
	img-convert --member disk.raw sparse.tar out.raw &&
	cmp disk.raw out.raw &&
	test $(du -k out.raw | cut -f1) -le $(( $(du -k disk.raw | cut -f1) + 64 ))
'

test_expect_success 'archives without the member, or with several disks: say which' '
	rm -f out.raw &&
	test_expect_code 1 img-convert -O raw --member nope.img three.zip out.raw 2>err &&
	one_line err "img-convert: cannot read '\''three.zip'\'': no member '\''nope.img'\'' (members: notes.txt, disk.raw, disk.qcow)" &&
	test_expect_code 1 img-convert -O raw three.zip out.raw 2>err &&
	one_line err "img-convert: cannot read '\''three.zip'\'': 3 members, say which with --member: notes.txt, disk.raw, disk.qcow" &&
	test_expect_code 1 img-convert -O raw --member disk.raw disk.raw.gzip out.raw 2>err &&
	one_line err "img-convert: cannot open '\''disk.raw.gzip'\'': --member is for archives, and this is not one" &&
	! test -e out.raw
'

test_expect_success 'truncated .xz, corrupt .gz, truncated tar, empty input: one line, no output' '
	rm -f out.raw out.qcow2 &&
	head -c 1000000 /dev/urandom >noise.raw &&
	xz -c noise.raw | head -c 500000 >cut.xz &&
	test_expect_code 1 img-convert -O qcow2 cut.xz out.qcow2 2>err &&
	one_line err "img-convert: cannot read '\''cut.xz'\'': Lzma library error:  No progress is possible at offset 500000" &&
	gzip -c noise.raw >bad.gz &&
	printf "\377\377\377\377" | dd of=bad.gz bs=1 seek=5000 conv=notrunc 2>/dev/null &&
	test_expect_code 1 img-convert -O qcow2 bad.gz out.qcow2 2>err &&
	grep -x "img-convert: cannot read '\''bad.gz'\'': gzip: incorrect data check at offset [0-9]*" err &&
	test_line_count = 1 err &&
	gzip -c noise.raw | head -c 300000 | test_expect_code 1 img-convert - out.raw 2>err &&
	one_line err "img-convert: cannot read '\''-'\'': gzip: truncated input at offset 300000" &&
	tar cf big.tar noise.raw && head -c 600000 big.tar >cut.tar &&
	test_expect_code 1 img-convert cut.tar out.raw 2>err &&
	grep -x "img-convert: cannot read '\''cut.tar'\'': tar member '\''noise.raw'\'': .* at offset [0-9]*" err &&
	: | test_expect_code 1 img-convert - out.raw 2>err &&
	one_line err "img-convert: cannot read '\''-'\'': no data (an empty input)" &&
	! test -e out.raw && ! test -e out.qcow2 &&
	test "$(ls -A | grep "^\.")" = ""
'

test_expect_success 'an output over its compressed source is refused' '
	cp disk.raw.gzip keep.gz &&
	test_expect_code 1 img-convert -O raw keep.gz keep.gz 2>err &&
	one_line err "img-convert: '\''keep.gz'\'' is the source: refusing to overwrite it" &&
	cmp keep.gz disk.raw.gzip
'

test_expect_success 'streamed outputs: through cat and gzip | gunzip, as the file written directly' '
	for f in qcow2 qed qcow; do
		img-convert -O $f disk.raw direct.$f &&
		img-convert -O $f disk.raw - | cat >cat.$f &&
		img-convert -O $f disk.raw - | gzip | gunzip >gz.$f &&
		cmp direct.$f cat.$f && cmp direct.$f gz.$f &&
		{ test $f = qcow || qemu-img check -q gz.$f; } &&
		reads_as gz.$f $f || return 1
	done &&
	gzip -c disk.qcow2 | img-convert -O qed - - 2>err | cat >pp.qed &&
	cmp direct.qed pp.qed &&
	test_line_count = 1 err
'

test_expect_success 'img-check and img-compact work on files: standard input and compressed files are refused' '
	for c in img-check img-compact; do
		test_expect_code 1 $c - <disk.qcow2 2>err &&
		one_line err "$c: cannot read an image from standard input ('\''-'\''): $c works on an image file in place" &&
		test_expect_code 1 $c disk.raw.xz 2>err &&
		one_line err "$c: cannot open '\''disk.raw.xz'\'': xz data, not an image: $c works on an image file in place" ||
		return 1
	done
'

# A 4 MiB tmpfs as TMPDIR (root only: mounting it): an image sent to a
# pipe is not held in a temporary file (48 MiB of data would not fit),
# only its tables are.
mkdir -p small
if test "$(id -u)" = 0 && mount -t tmpfs -o size=4m tmpfs small 2>/dev/null; then
	test_set_prereq SMALLTMP
else
	echo "# SMALLTMP: not root or cannot mount a tmpfs: the small-TMPDIR test is skipped"
fi
test_expect_success SMALLTMP 'an image to a pipe holds only its tables in TMPDIR, and is the file byte for byte' '
	qemu-img create -q -f qcow2 big.qcow2 1G &&
	qio qcow2 big.qcow2 "write -P 0x41 0 32M" "write -z 100M 1M" "write -P 0x43 900M 16M" &&
	for f in qcow2 qed qcow; do
		TMPDIR=$PWD/small img-convert -O $f big.qcow2 - | cat >piped.$f &&
		img-convert -O $f big.qcow2 file.$f &&
		cmp file.$f piped.$f || return 1
	done &&
	TMPDIR=$PWD/small img-convert -c -O qcow2 big.qcow2 - | gzip -1 | gunzip >pc.qcow2 &&
	img-convert -c -O qcow2 big.qcow2 fc.qcow2 &&
	cmp fc.qcow2 pc.qcow2 &&
	qemu-img check -q pc.qcow2 &&
	qemu-img compare -q big.qcow2 pc.qcow2 &&
	test "$(ls -A small)" = ""
'
umount small 2>/dev/null

test_done
