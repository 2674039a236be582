#!/bin/sh
# 9323-iotests-qcow-092.sh: qemu-iotests 092 (qcow v1 input validation) ported: each header value it pokes, qemu's answer and ours side by side, and the in-range neighbours of each, which both open, read and checked.
test_description='qemu-iotests 092: damaged qcow v1 headers'
. "$(dirname "$0")/lib.sh"

# The damage is the iotest's own: cluster_bits (byte 32), l2_bits (byte
# 33), the size (bytes 24..31), the backing file name's offset (its high
# half, bytes 8..11) and size (16..19). QEMU refuses each at open; so
# must we. t/9001 covers other out-of-range values with our readers; here
# each iotest value is also checked by img-check against qemu-img check,
# and the nearest value that opens is read by both and repaired by ours.
# QEMU has no qcow check (qemu-img check exits 63 on an image it opens,
# 1 on one it cannot), so img-check's answer is asserted as ours.

# refused_by_both IMG: qemu-io cannot open IMG (the iotest's read),
# qemu-img check exits 1; img-check and our readers refuse it with one
# line naming it, exit 1, and leave it as it was.
refused_by_both() {
	cp "$1" before.qcow &&
	test_must_fail qemu-io -f qcow -c "read 0 512" "$1" >qio.out 2>&1 &&
	grep -F "can't open device" qio.out &&
	test_expect_code 1 qemu-img check "$1" 2>/dev/null &&
	open_fails img-check "$1" &&
	test_expect_code 1 img-check -r all "$1" 2>/dev/null &&
	all_fail "$1" &&
	cmp before.qcow "$1"
}

# reads_as_qemu IMG: qemu-img convert and img-convert both read IMG, the
# same bytes, or both fail (ours with one line).
reads_as_qemu() {
	rm -f q.raw o.raw
	qemu-img convert -f qcow -O raw "$1" q.raw 2>/dev/null
	ra_q_=$?
	img-convert -f qcow -O raw "$1" o.raw 2>o.err
	ra_o_=$?
	no_sanitizer_report o.err &&
	{ test $ra_q_ = $ra_o_ ||
		{ echo >&2 "convert: qemu-img $ra_q_, img-convert $ra_o_"; false; }; } &&
	if test $ra_q_ = 0; then
		cmp q.raw o.raw
	else
		test_line_count = 1 o.err
	fi
}

# opens_in_both IMG CODE: a value QEMU accepts. qemu-img opens IMG (its
# check: 63, no qcow check), both read it alike, img-check exits CODE;
# img-check -r all leaves an image no worse (exit 0 or what it was, 3 if
# the leaks cannot all be given back), which reads as before wherever it
# could be read (qemu-img convert --salvage, read errors as zeros).
opens_in_both() {
	test_expect_code 63 qemu-img check "$1" 2>/dev/null &&
	reads_as_qemu "$1" &&
	test_expect_code "$2" img-check "$1" >/dev/null 2>ob.err &&
	no_sanitizer_report ob.err &&
	cp "$1" rep.qcow &&
	{ img-check -r all rep.qcow >/dev/null 2>ob.err; ob_r_=$?; true; } &&
	no_sanitizer_report ob.err &&
	case "$2,$ob_r_" in
	*,0|3,3|2,2) ;;
	*) echo >&2 "-r all exits $ob_r_ (check exited $2)"; false ;;
	esac &&
	test_expect_code $ob_r_ img-check rep.qcow >/dev/null 2>&1 &&
	rm -f s1.raw s2.raw &&
	qemu-img convert --salvage -f qcow -O raw "$1" s1.raw 2>/dev/null &&
	qemu-img convert --salvage -f qcow -O raw rep.qcow s2.raw 2>/dev/null &&
	cmp s1.raw s2.raw
}

# good.qcow: 64 MiB as in the iotest: 4 KiB clusters, 512-entry L2
# tables, the L1 table (32 entries) at 48; data at 0 and at 32 MiB.
test_expect_success 'setup' '
	qemu-img create -q -f qcow good.qcow 64M &&
	qio qcow good.qcow "write -P 0x11 0 64k" "write -P 0x22 32M 4k" &&
	test $(img-poke good.qcow 32 read u8) = 12 &&
	test $(img-poke good.qcow 33 read u8) = 9 &&
	test $(img-poke good.qcow 40 read be64) = 48 &&
	opens_in_both good.qcow 0
'

test_expect_success '092: qcow cluster_bits 0xff' '
	damage good.qcow cb.qcow 32 u8 0xff &&
	refused_by_both cb.qcow
'

test_expect_success '092: qcow cluster_bits 0x1f' '
	damage good.qcow cb.qcow 32 u8 0x1f &&
	refused_by_both cb.qcow
'

# The nearest value that opens, 9 (512-byte clusters): the tables now
# name 512-byte clusters, most of each old 4 KiB cluster is a leak.
test_expect_success '092: qcow cluster_bits 0x08 (too small)' '
	damage good.qcow cb.qcow 32 u8 8 &&
	refused_by_both cb.qcow &&
	damage good.qcow cb9.qcow 32 u8 9 &&
	opens_in_both cb9.qcow 3
'

# 16 (64 KiB clusters): the L2 tables and the data now overlap.
test_expect_success '092: qcow cluster_bits 0x11 (too large)' '
	damage good.qcow cb.qcow 32 u8 0x11 &&
	refused_by_both cb.qcow &&
	damage good.qcow cb16.qcow 32 u8 16 &&
	opens_in_both cb16.qcow 2
'

test_expect_success '092: qcow l2_bits 0xff' '
	damage good.qcow l2b.qcow 33 u8 0xff &&
	refused_by_both l2b.qcow
'

# 6 (64-entry L2 tables): a smaller view of the same tables, clean.
test_expect_success '092: qcow l2_bits 0x05 (too small)' '
	damage good.qcow l2b.qcow 33 u8 5 &&
	refused_by_both l2b.qcow &&
	damage good.qcow l2b6.qcow 33 u8 6 &&
	opens_in_both l2b6.qcow 0
'

# 13 (64 KiB L2 tables): the first table runs into the data, whose bytes
# become misaligned entries: reading fails for both past them.
test_expect_success '092: qcow l2_bits 0x0e (too large)' '
	damage good.qcow l2b.qcow 33 u8 0xe &&
	refused_by_both l2b.qcow &&
	damage good.qcow l2b13.qcow 33 u8 13 &&
	opens_in_both l2b13.qcow 2 &&
	test_must_fail qemu-img convert -f qcow -O raw l2b13.qcow q.raw 2>/dev/null
'

# 1 << 0x1b = 2^31 bytes of L2 cache in QEMU: refused before any is made.
test_expect_success '092: qcow l2_bits 0x1b' '
	damage good.qcow l2b.qcow 33 u8 0x1b &&
	refused_by_both l2b.qcow
'

# An L1 table of 2^43 entries: refused before any allocation. The
# smallest size QEMU takes, 2 bytes, reads as an empty disk (QEMU counts
# whole sectors) whose clusters are all leaks.
test_expect_success '092: qcow size 0xeeeeeeeeeeeeeeee' '
	damage good.qcow sz.qcow 24 be64 0xeeeeeeeeeeeeeeee &&
	refused_by_both sz.qcow &&
	damage good.qcow sz2.qcow 24 be64 2 &&
	opens_in_both sz2.qcow 3 &&
	test $(stat -c %s o.raw) = 0 &&
	damage good.qcow sz1.qcow 24 be64 1 &&
	refused_by_both sz1.qcow
'

# The iotest writes 64 MiB into it: qemu-io cannot open it to write, nor
# can img-convert -n; the image is left as it was.
test_expect_success '092: qcow size 0x7fffffffffffffff, then a 64 MiB write' '
	damage good.qcow sz.qcow 24 be64 0x7fffffffffffffff &&
	refused_by_both sz.qcow &&
	test_must_fail qemu-io -f qcow -c "write 0 64M" sz.qcow >qio.out 2>&1 &&
	grep -F "can'"'"'t open device" qio.out &&
	truncate -s 64M src.raw &&
	test_expect_code 1 img-convert -n -O qcow src.raw sz.qcow 2>err &&
	test_line_count = 1 err &&
	cmp before.qcow sz.qcow
'

# The iotest puts the name at 0xff00000000 (the offset's high half set),
# far past the end of the file, with a size too long for any name.
test_expect_success '092: qcow backing file name of 0xffffffff bytes at 0xff00000000' '
	damage good.qcow bf.qcow 8 be32 0xff 16 be32 0xffffffff &&
	test $(img-poke bf.qcow 8 read be64) = $((0xff00000000)) &&
	refused_by_both bf.qcow
'

test_expect_success '092: qcow backing file name of 0x7fffffff bytes at 0xff00000000' '
	damage good.qcow bf.qcow 8 be32 0xff 16 be32 0x7fffffff &&
	refused_by_both bf.qcow &&
	damage good.qcow bf1024.qcow 8 be32 0xff 16 be32 1024 &&
	refused_by_both bf1024.qcow
'

# The longest name QEMU takes (1023 bytes) at the same offset: QEMU reads
# what the file holds there, nothing, as an empty name (no backing file)
# and reads the image; so do we. img-check reports the name past the end
# and -r all writes nothing (a cluster appended there would write a
# name); writers refuse the image.
test_expect_success '092: qcow backing file name of 1023 bytes past the end of the file' '
	damage good.qcow bf1023.qcow 8 be32 0xff 16 be32 1023 &&
	qemu-img info bf1023.qcow >info &&
	! grep -F "backing file" info &&
	img-info bf1023.qcow >info &&
	! grep -Fi "backing" info &&
	opens_in_both bf1023.qcow 2 &&
	cmp bf1023.qcow rep.qcow &&
	test_expect_code 2 img-check bf1023.qcow >/dev/null 2>err &&
	grep -Fx "ERROR backing file name at 0xff00000000 (1023 bytes): runs past end of file" err &&
	test_expect_code 2 img-check -r all rep.qcow >/dev/null 2>err &&
	grep -Fx "ERROR the header is damaged: nothing repaired" err &&
	test_expect_code 1 img-convert -n -O qcow o.raw rep.qcow 2>err &&
	test_line_count = 1 err &&
	test_expect_code 1 img-compact rep.qcow 2>err &&
	cmp bf1023.qcow rep.qcow
'

test_done
