#!/bin/sh
# 9002-damaged-qed.sh: damaged QED images give exit 1, one line naming the file, and no sanitizer report.
test_description='damaged QED images'
. "$(dirname "$0")/lib.sh"

# good.qed: 64 KiB clusters, table size 4; L1 at 0x10000, first data
# cluster at 0x50000, its L2 table at 0x60000; 0xa0000 bytes long.
test_expect_success 'setup' '
	qemu-img create -q -f qed good.qed 8M &&
	qio qed good.qed "write -P 0x11 0 64k" &&
	test $(img-poke good.qed 40 read le64) = $((0x10000)) &&
	test $(img-poke good.qed $((0x10000)) read le64) = $((0x60000)) &&
	test $(img-poke good.qed $((0x60000)) read le64) = $((0x50000)) &&
	test $(stat -c %s good.qed) = $((0xa0000)) &&
	img-map good.qed >/dev/null
'

test_expect_success 'empty file and truncated header' '
	: >empty.qed &&
	all_fail empty.qed -f qed &&
	head -c 60 good.qed >trunc.qed &&
	all_fail trunc.qed -f qed
'

test_expect_success 'truncated inside the L1 table' '
	head -c $((0x20000)) good.qed >trunc-l1.qed &&
	all_fail trunc-l1.qed
'

test_expect_success 'bad magic, read as QED' '
	damage good.qed magic.qed 0 le32 0x00444552 &&
	all_fail magic.qed -f qed
'

test_expect_success 'cluster size: not a power of two, too small, too large, zero' '
	damage good.qed cs3000.qed 4 le32 3000 &&
	all_fail cs3000.qed &&
	damage good.qed cs2k.qed 4 le32 2048 &&
	all_fail cs2k.qed &&
	damage good.qed cs128m.qed 4 le32 0x8000000 &&
	all_fail cs128m.qed &&
	damage good.qed cs0.qed 4 le32 0 &&
	all_fail cs0.qed
'

test_expect_success 'table size 3, 0 and 32' '
	damage good.qed ts3.qed 8 le32 3 &&
	all_fail ts3.qed &&
	damage good.qed ts0.qed 8 le32 0 &&
	all_fail ts0.qed &&
	damage good.qed ts32.qed 8 le32 32 &&
	all_fail ts32.qed
'

test_expect_success 'header size overflowing 32 bits' '
	damage good.qed hsbig.qed 12 le32 0x80000 &&
	all_fail hsbig.qed
'

test_expect_success 'unknown feature bit 0x8' '
	damage good.qed feat.qed 16 le64 0x8 &&
	all_fail feat.qed &&
	damage good.qed feat63.qed 16 le64 0x8000000000000000 &&
	all_fail feat63.qed
'

test_expect_success 'image size: not a multiple of 512, beyond the maximum' '
	damage good.qed isodd.qed 48 le64 1000001 &&
	all_fail isodd.qed &&
	damage good.qed isbig.qed 48 le64 0x400000000000000 &&
	all_fail isbig.qed &&
	damage good.qed ismax.qed 48 le64 0xfffffffffffffe00 &&
	all_fail ismax.qed
'

test_expect_success 'L1 table offset: zero, misaligned, inside the header, past end of file' '
	damage good.qed l1zero.qed 40 le64 0 &&
	all_fail l1zero.qed &&
	damage good.qed l1mis.qed 40 le64 0x10200 &&
	all_fail l1mis.qed &&
	damage good.qed l1eof.qed 40 le64 0x1000000000 &&
	all_fail l1eof.qed &&
	damage good.qed l1tail.qed 40 le64 0x80000 &&
	all_fail l1tail.qed
'

test_expect_success 'backing file name outside the header' '
	damage good.qed bname.qed 16 le64 1 56 le32 0x20000 60 le32 8 &&
	all_fail bname.qed &&
	damage good.qed blen.qed 16 le64 1 56 le32 64 60 le32 0x10000 &&
	all_fail blen.qed
'

test_expect_success 'L2 table past end of file, misaligned, inside the header' '
	damage good.qed l2eof.qed $((0x10000)) le64 0x10000000 &&
	open_fails img-map l2eof.qed &&
	open_fails img-convert l2eof.qed &&
	damage good.qed l2mis.qed $((0x10000)) le64 0x60004 &&
	open_fails img-map l2mis.qed &&
	open_fails img-convert l2mis.qed &&
	damage good.qed l2hdr.qed $((0x10000)) le64 0x1000 &&
	open_fails img-map l2hdr.qed
'

test_expect_success 'L2 table whose last cluster is past end of file' '
	damage good.qed l2tail.qed $((0x10000)) le64 0x80000 &&
	open_fails img-map l2tail.qed
'

test_expect_success 'data cluster offset misaligned, past end of file, inside the header' '
	damage good.qed dmis.qed $((0x60000)) le64 0x50001 &&
	open_fails img-map dmis.qed &&
	open_fails img-convert dmis.qed &&
	damage good.qed deof.qed $((0x60000)) le64 0x100000000 &&
	open_fails img-map deof.qed &&
	open_fails img-convert deof.qed &&
	damage good.qed dhdr.qed $((0x60000)) le64 0x1000 &&
	open_fails img-map dhdr.qed
'

test_expect_success 'table size 1: QEMU cannot open it; we must not crash either way' '
	qemu-img create -q -f qed -o table_size=1,cluster_size=4k ts1.qed 1M &&
	{ img-map ts1.qed >/dev/null 2>err; code=$?; } &&
	test $code -le 1 &&
	no_sanitizer_report err
'

test_expect_success 'random header garbage never crashes' '
	i=0 &&
	while test $i -lt 40; do
		cp good.qed fuzz.qed &&
		off=$(( (i * 29) % 64 )) &&
		img-poke fuzz.qed $off u8 $(( (i * 97 + 13) % 256 )) &&
		img-poke fuzz.qed $(( 4 + (off + 19) % 60 )) u8 $(( (i * 61 + 7) % 256 )) &&
		{ timeout 10 img-map -f qed fuzz.qed >/dev/null 2>fuzz.err; code=$?; } &&
		{ test $code -le 1 || { echo "byte $off: exit $code"; false; }; } &&
		no_sanitizer_report fuzz.err &&
		{ timeout 10 img-convert -f qed -O raw fuzz.qed fuzz.raw 2>fuzz.err; code=$?; } &&
		{ test $code -le 1 || { echo "byte $off: exit $code"; false; }; } &&
		no_sanitizer_report fuzz.err || return 1
		rm -f fuzz.raw
		i=$((i + 1))
	done
'

test_done
