#!/bin/sh
# 9001-damaged-qcow.sh: damaged qcow (v1) images give exit 1, one line naming the file, and no sanitizer report.
test_description='damaged qcow v1 images'
. "$(dirname "$0")/lib.sh"

# good.qcow: 4 MiB, 4 KiB clusters, 512-entry L2 tables; L1 (2 entries) at
# 48, first L2 at 4096, first data cluster at 8192.
test_expect_success 'setup' '
	qemu-img create -q -f qcow good.qcow 4M &&
	qio qcow good.qcow "write -P 0x11 0 8k" "write -P 0x12 3M 4k" &&
	test $(img-poke good.qcow 40 read be64) = 48 &&
	test $(img-poke good.qcow 48 read be64) = 4096 &&
	test $(img-poke good.qcow 4096 read be64) = 8192 &&
	img-map good.qcow >/dev/null
'

test_expect_success 'empty file and truncated header' '
	: >empty.qcow &&
	all_fail empty.qcow -f qcow &&
	head -c 40 good.qcow >trunc.qcow &&
	all_fail trunc.qcow -f qcow
'

test_expect_success 'bad magic, read as qcow' '
	damage good.qcow magic.qcow 0 be32 0x12345678 &&
	all_fail magic.qcow -f qcow
'

test_expect_success 'versions other than 1, read as qcow' '
	damage good.qcow v2.qcow 4 be32 2 &&
	all_fail v2.qcow -f qcow &&
	damage good.qcow v0.qcow 4 be32 0 &&
	all_fail v0.qcow -f qcow
'

test_expect_success 'cluster_bits out of range (8, 17, 30)' '
	damage good.qcow cb8.qcow 32 u8 8 &&
	all_fail cb8.qcow &&
	damage good.qcow cb17.qcow 32 u8 17 &&
	all_fail cb17.qcow &&
	damage good.qcow cb30.qcow 32 u8 30 &&
	all_fail cb30.qcow
'

test_expect_success 'l2_bits out of range (5, 14, 40)' '
	damage good.qcow l2b5.qcow 33 u8 5 &&
	all_fail l2b5.qcow &&
	damage good.qcow l2b14.qcow 33 u8 14 &&
	all_fail l2b14.qcow &&
	damage good.qcow l2b40.qcow 33 u8 40 &&
	all_fail l2b40.qcow
'

test_expect_success 'absurd sizes: huge, and below 2 bytes' '
	damage good.qcow huge.qcow 24 be64 0xffffffffffffff00 &&
	all_fail huge.qcow &&
	damage good.qcow big.qcow 24 be64 0x7fffffffffffffff &&
	all_fail big.qcow &&
	damage good.qcow one.qcow 24 be64 1 &&
	all_fail one.qcow
'

test_expect_success 'L1 table past end of file' '
	damage good.qcow l1eof.qcow 40 be64 0x100000000 &&
	all_fail l1eof.qcow &&
	damage good.qcow l1part.qcow 24 be64 0x400000000 &&
	all_fail l1part.qcow
'

test_expect_success 'unknown encryption method' '
	damage good.qcow crypt.qcow 36 be32 2 &&
	all_fail crypt.qcow
'

# A name past the end of the file QEMU reads as zeros there (none: no
# backing file), and so do we; the check reports it, writers refuse it.
test_expect_success 'backing name too long or past end of file' '
	damage good.qcow bl.qcow 8 be64 48 16 be32 1024 &&
	all_fail bl.qcow &&
	damage good.qcow beof.qcow 8 be64 0x10000000 16 be32 10 &&
	rm -f beof.raw qbeof.raw &&
	img-convert -O raw beof.qcow beof.raw &&
	qemu-img convert -O raw beof.qcow qbeof.raw &&
	cmp beof.raw qbeof.raw &&
	test_expect_code 2 img-check beof.qcow >/dev/null 2>err &&
	grep -Fx "ERROR backing file name at 0x10000000 (10 bytes): runs past end of file" err &&
	test_expect_code 1 img-convert -n -O qcow beof.raw beof.qcow 2>err &&
	test_line_count = 1 err
'

# As QEMU reads them: an L2 table wholly past the end of the file is an
# empty one, one cut short by it cannot be read.
test_expect_success 'L2 table past end of file' '
	damage good.qcow l2eof.qcow 48 be64 0x10000000 &&
	rm -f l2eof.raw ql2eof.raw &&
	img-convert -O raw l2eof.qcow l2eof.raw &&
	qemu-img convert -O raw l2eof.qcow ql2eof.raw &&
	cmp l2eof.raw ql2eof.raw &&
	damage good.qcow l2cut.qcow 48 be64 $(($(stat -c %s good.qcow) - 512)) &&
	open_fails img-map l2cut.qcow &&
	open_fails img-convert l2cut.qcow &&
	test_expect_code 2 img-check l2eof.qcow >/dev/null
'

test_expect_success 'data cluster offset not a multiple of 512' '
	damage good.qcow dmis.qcow 4096 be64 8200 &&
	open_fails img-convert dmis.qcow
'

test_expect_success 'compressed cluster: garbage stream, and stream past end of file' '
	truncate -s 1M csrc.raw &&
	qio raw csrc.raw "write -P 0x21 0 1M" &&
	{ qemu-img convert -c -O qcow csrc.raw comp.qcow; test $? -le 1; } &&
	qemu-img compare -q -f raw -F qcow csrc.raw comp.qcow &&
	l2=$(img-poke comp.qcow 48 read be64) &&
	coff=$(img-poke comp.qcow $((l2 + 4)) read be32) &&
	test $(img-poke comp.qcow $l2 read u8) -ge 128 &&
	damage comp.qcow cgarb.qcow $coff be64 0xffffffffffffffff $((coff + 8)) be64 0x0123456789abcdef &&
	open_fails img-convert cgarb.qcow &&
	damage comp.qcow ceof.qcow $((l2 + 4)) be32 0x7ffff000 &&
	open_fails img-convert ceof.qcow
'

test_expect_success 'AES image without a key' '
	qemu-img create -q -f qcow --object secret,id=sec0,data=pw \
		-o encrypt.format=aes,encrypt.key-secret=sec0 aes.qcow 1M &&
	qio_aes qcow aes.qcow pw "write -P 0x31 0 4k" &&
	open_fails img-convert aes.qcow
'

test_expect_success 'AES image with a missing key file' '
	test_must_fail img-convert -O raw --key-file no-such-key aes.qcow out.raw 2>err &&
	test_line_count = 1 err &&
	grep "no-such-key" err
'

test_expect_success 'random header garbage never crashes' '
	i=0 &&
	while test $i -lt 40; do
		cp good.qcow fuzz.qcow &&
		off=$(( (i * 29) % 48 )) &&
		img-poke fuzz.qcow $off u8 $(( (i * 97 + 13) % 256 )) &&
		img-poke fuzz.qcow $(( 4 + (off + 19) % 44 )) u8 $(( (i * 61 + 7) % 256 )) &&
		{ timeout 10 img-map -f qcow fuzz.qcow >/dev/null 2>fuzz.err; code=$?; } &&
		{ test $code -le 1 || { echo "byte $off: exit $code"; false; }; } &&
		no_sanitizer_report fuzz.err &&
		{ timeout 10 img-convert -f qcow -O raw fuzz.qcow fuzz.raw 2>fuzz.err; code=$?; } &&
		{ test $code -le 1 || { echo "byte $off: exit $code"; false; }; } &&
		no_sanitizer_report fuzz.err || return 1
		rm -f fuzz.raw
		i=$((i + 1))
	done
'

test_done
