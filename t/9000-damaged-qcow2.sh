#!/bin/sh
# 9000-damaged-qcow2.sh: damaged qcow2 images give exit 1, one line naming the file, and no sanitizer report.
test_description='damaged qcow2 images'
. "$(dirname "$0")/lib.sh"

# good.qcow2: 64 KiB clusters, header, reftable at 0x10000, refblock at
# 0x20000, L1 at 0x30000, L2 at 0x40000, data from 0x50000.
test_expect_success 'setup' '
	qemu-img create -q -f qcow2 good.qcow2 8M &&
	qio qcow2 good.qcow2 "write -P 0x11 0 128k" "write -P 0x12 1M 64k" &&
	test $(img-poke good.qcow2 40 read be64) = $((0x30000)) &&
	test $(img-poke good.qcow2 $((0x30000 + 4)) read be32) = $((0x40000)) &&
	test $(img-poke good.qcow2 $((0x40000 + 4)) read be32) = $((0x50000)) &&
	img-map good.qcow2 >/dev/null &&
	qemu-img create -q -f qcow2 -o compat=0.10 good-v2.qcow2 8M &&
	qio qcow2 good-v2.qcow2 "write -P 0x13 0 64k" &&
	test $(img-poke good-v2.qcow2 $((0x40000 + 4)) read be32) = $((0x50000))
'

test_expect_success 'empty file read as qcow2' '
	: >empty.qcow2 &&
	all_fail empty.qcow2 -f qcow2
'

test_expect_success 'truncated inside the header' '
	head -c 50 good.qcow2 >trunc50.qcow2 &&
	all_fail trunc50.qcow2 &&
	head -c 100 good.qcow2 >trunc100.qcow2 &&
	all_fail trunc100.qcow2
'

test_expect_success 'truncated before the L1 table' '
	head -c $((0x30000)) good.qcow2 >trunc-l1.qcow2 &&
	all_fail trunc-l1.qcow2
'

test_expect_success 'bad magic, read as qcow2' '
	damage good.qcow2 magic.qcow2 0 be32 0x51464900 &&
	all_fail magic.qcow2 -f qcow2
'

test_expect_success 'unknown versions' '
	damage good.qcow2 v4.qcow2 4 be32 4 &&
	all_fail v4.qcow2 &&
	damage good.qcow2 v0.qcow2 4 be32 0 &&
	all_fail v0.qcow2 -f qcow2
'

test_expect_success 'cluster_bits out of range (30, 8, 22)' '
	damage good.qcow2 cb30.qcow2 20 be32 30 &&
	all_fail cb30.qcow2 &&
	damage good.qcow2 cb8.qcow2 20 be32 8 &&
	all_fail cb8.qcow2 &&
	damage good.qcow2 cb22.qcow2 20 be32 22 &&
	all_fail cb22.qcow2
'

test_expect_success 'huge l1_size' '
	damage good.qcow2 l1huge.qcow2 36 be32 0x7fffffff &&
	all_fail l1huge.qcow2 &&
	damage good.qcow2 l1max.qcow2 36 be32 0xffffffff &&
	all_fail l1max.qcow2
'

test_expect_success 'L1 table too small for the virtual size' '
	damage good.qcow2 l1small.qcow2 24 be64 0x100000000000 &&
	all_fail l1small.qcow2 &&
	damage good.qcow2 l1zero.qcow2 36 be32 0 &&
	all_fail l1zero.qcow2
'

test_expect_success 'absurd virtual size' '
	damage good.qcow2 size.qcow2 24 be64 0xfffffffffffffe00 &&
	all_fail size.qcow2
'

test_expect_success 'L1 table past end of file' '
	damage good.qcow2 l1eof.qcow2 40 be64 0x10000000000 &&
	all_fail l1eof.qcow2 &&
	test $(stat -c %s good.qcow2) = $((0x80000)) &&
	damage good.qcow2 l1edge.qcow2 40 be64 0x70000 36 be32 0x4000 &&
	all_fail l1edge.qcow2
'

test_expect_success 'misaligned L1 table offset' '
	damage good.qcow2 l1mis.qcow2 40 be64 0x30200 &&
	all_fail l1mis.qcow2
'

test_expect_success 'refcount table: zero or absurdly many clusters, misaligned' '
	damage good.qcow2 rt0.qcow2 56 be32 0 &&
	all_fail rt0.qcow2 &&
	damage good.qcow2 rthuge.qcow2 56 be32 0x7fffffff &&
	all_fail rthuge.qcow2 &&
	damage good.qcow2 rtmis.qcow2 48 be64 0x10200 &&
	all_fail rtmis.qcow2
'

test_expect_success 'refcount_order 7' '
	damage good.qcow2 ro7.qcow2 96 be32 7 &&
	all_fail ro7.qcow2
'

test_expect_success 'unknown incompatible feature bit 0x20' '
	damage good.qcow2 feat.qcow2 72 be64 0x20 &&
	all_fail feat.qcow2 &&
	grep -i "incompatible feature" of.err &&
	damage good.qcow2 feat63.qcow2 72 be64 0x8000000000000000 &&
	all_fail feat63.qcow2
'

test_expect_success 'compression type without its incompatible bit, and the reverse' '
	damage good.qcow2 ct1.qcow2 104 u8 1 &&
	all_fail ct1.qcow2 &&
	damage good.qcow2 ctbit.qcow2 72 be64 0x8 &&
	all_fail ctbit.qcow2 &&
	damage good.qcow2 ct9.qcow2 72 be64 0x8 104 u8 9 &&
	all_fail ct9.qcow2
'

test_expect_success 'extended L2 bit with clusters below 16 KiB' '
	qemu-img create -q -f qcow2 -o cluster_size=4k small.qcow2 1M &&
	damage small.qcow2 xl2small.qcow2 72 be64 0x10 &&
	all_fail xl2small.qcow2
'

test_expect_success 'external data file bit without a data file name' '
	damage good.qcow2 nodata.qcow2 72 be64 0x4 &&
	all_fail nodata.qcow2
'

test_expect_success 'header_length too short, beyond the cluster' '
	damage good.qcow2 hl.qcow2 100 be32 100 &&
	all_fail hl.qcow2 &&
	damage good.qcow2 hlbig.qcow2 100 be32 0x20000 &&
	all_fail hlbig.qcow2
'

test_expect_success 'backing name offset or length out of range' '
	damage good.qcow2 bo.qcow2 8 be64 0x20000 16 be32 8 &&
	all_fail bo.qcow2 &&
	damage good.qcow2 bl.qcow2 8 be64 0x1000 16 be32 2000 &&
	all_fail bl.qcow2
'

test_expect_success 'unknown encryption method' '
	damage good.qcow2 crypt.qcow2 32 be32 3 &&
	all_fail crypt.qcow2
'

# A snapshot table past the end of the file reads as zeros, as under QEMU:
# readers go on (t/9310-check-parity.sh).
test_expect_success 'snapshot table: too many, past end of file, misaligned' '
	damage good.qcow2 snapmany.qcow2 60 be32 70000 64 be64 0x20000 &&
	all_fail snapmany.qcow2 &&
	damage good.qcow2 snapeof.qcow2 60 be32 3 64 be64 0x1000000000 &&
	img-convert -O raw snapeof.qcow2 snapeof.raw &&
	qemu-img compare -q good.qcow2 snapeof.raw &&
	damage good.qcow2 snapmis.qcow2 60 be32 1 64 be64 0x20200 &&
	all_fail snapmis.qcow2
'

test_expect_success 'header extension longer than the header cluster' '
	damage good.qcow2 ext.qcow2 116 be32 0x7fffffff &&
	all_fail ext.qcow2
'

# Damage below the header shows when the tables are read.
# Read as QEMU reads it: an empty table, the range unallocated; img-check
# reports it (t/9310 compares the details with qemu-img).
test_expect_success 'L2 table past end of file' '
	damage good.qcow2 l2eof.qcow2 $((0x30000)) be64 0x8000010000000000 &&
	rm -f l2eof.raw ql2eof.raw &&
	img-convert -O raw l2eof.qcow2 l2eof.raw &&
	qemu-img convert -O raw l2eof.qcow2 ql2eof.raw &&
	cmp l2eof.raw ql2eof.raw &&
	test_expect_code 2 img-check l2eof.qcow2 >out 2>&1 &&
	grep -i "0x10000000000" out
'

test_expect_success 'misaligned L2 table offset' '
	damage good.qcow2 l2mis.qcow2 $((0x30000)) be64 0x8000000000040200 &&
	open_fails img-map l2mis.qcow2 &&
	open_fails img-convert l2mis.qcow2
'

test_expect_success 'misaligned data cluster offset' '
	damage good.qcow2 dmis.qcow2 $((0x40000)) be64 0x8000000000050200 &&
	open_fails img-map dmis.qcow2 &&
	open_fails img-convert dmis.qcow2
'

test_expect_success 'zero flag in a v2 image' '
	damage good-v2.qcow2 zv2.qcow2 $((0x40000)) be64 0x8000000000050001 &&
	open_fails img-convert zv2.qcow2
'

test_expect_success 'compressed cluster: garbage stream and stream past end of file' '
	truncate -s 1M csrc.raw &&
	qio raw csrc.raw "write -P 0x21 0 1M" &&
	qemu-img convert -c -O qcow2 csrc.raw comp.qcow2 &&
	entry=$(img-poke comp.qcow2 $((0x40000)) read be64) &&
	test $entry -ne 0 &&
	coff=$(img-poke comp.qcow2 $((0x40000 + 4)) read be32) &&
	damage comp.qcow2 cgarb.qcow2 $coff be64 0xffffffffffffffff $((coff + 8)) be64 0x0123456789abcdef &&
	open_fails img-convert cgarb.qcow2 &&
	damage comp.qcow2 ceof.qcow2 $((0x40000)) be32 0x40000100 &&
	open_fails img-convert ceof.qcow2
'

test_expect_success 'random header garbage never crashes' '
	i=0 &&
	while test $i -lt 40; do
		cp good.qcow2 fuzz.qcow2 &&
		off=$(( (i * 37) % 112 )) &&
		img-poke fuzz.qcow2 $off u8 $(( (i * 97 + 13) % 256 )) &&
		img-poke fuzz.qcow2 $(( (off + 53) % 104 )) u8 $(( (i * 61 + 7) % 256 )) &&
		{ img-map fuzz.qcow2 >/dev/null 2>fuzz.err; code=$?; } &&
		{ test $code = 0 || test $code = 1 || { echo "byte $off: exit $code"; false; }; } &&
		no_sanitizer_report fuzz.err &&
		{ img-convert -O raw fuzz.qcow2 fuzz.raw 2>fuzz.err; code=$?; } &&
		{ test $code = 0 || test $code = 1 || { echo "byte $off: exit $code"; false; }; } &&
		no_sanitizer_report fuzz.err || return 1
		rm -f fuzz.raw
		i=$((i + 1))
	done
'

test_done
