#!/bin/sh
# 9320-iotests-qcow2-039-060.sh: the scenarios of qemu-iotests 039 (lazy refcounts, the dirty bit) and 060 (overlapping metadata, the corrupt bit), re-created with qemu-img, qemu-io and img-poke; qemu-img's answer and ours side by side.
test_description='qemu-iotests 039 and 060 against qemu-img'
. "$(dirname "$0")/lib.sh"

# --- helpers -------------------------------------------------------------

# bits IMG: the incompatible feature bits of a version 3 header (1 dirty,
# 2 corrupt).
bits() {
	img-poke "$1" 72 read be64
}

# info_same IMG: img-info shows the dirty and corrupt bits as qemu-img info.
info_same() {
	qemu-img info --output=json "$1" >qi.json &&
	img-info --output=json "$1" >oi.json &&
	json_get qi.json dirty-flag format-specific.data.corrupt >qi.flags &&
	json_get oi.json dirty-flag format-specific.data.corrupt >oi.flags &&
	cat qi.flags &&
	test_cmp qi.flags oi.flags
}

# read_same IMG: where qemu-img convert reads IMG, img-convert reads the
# same bytes; where it refuses, so do we (exit 1, one line).
read_same() {
	rm -f q.raw o.raw
	qemu-img convert -O raw "$1" q.raw 2>q.err
	rs_q_=$?
	img-convert -O raw "$1" o.raw 2>o.err
	rs_o_=$?
	cat q.err o.err >&2
	no_sanitizer_report o.err &&
	{ test $rs_o_ = $rs_q_ ||
	  { echo >&2 "convert: qemu-img exits $rs_q_, img-convert $rs_o_"; false; }; } &&
	if test $rs_q_ = 0; then
		cmp q.raw o.raw
	else
		test_line_count = 1 o.err
	fi
}

# pattern_at FILE OFFSET LEN BYTE: LEN bytes of FILE at OFFSET are BYTE.
pattern_at() {
	perl -e '
		my ($f, $off, $len, $byte) = @ARGV;
		open my $fh, "<", $f or die "$f: $!\n";
		seek $fh, $off, 0;
		read($fh, my $buf, $len) == $len or die "short read\n";
		exit($buf eq chr(oct($byte)) x $len ? 0 : 1);
	' "$@"
}

# repair_same IMG: copies q.img and o.img of IMG repaired by qemu-img
# check -r all and img-check -r all give the same report and exit status;
# qemu-img check then judges both alike, the dirty and corrupt bits are
# the same, and the two read the same.
repair_same() {
	cp "$1" q.img && cp "$1" o.img &&
	check_report q.img qemu-img check -r all >qr.report &&
	check_report o.img img-check -r all >or.report &&
	cat qr.report &&
	test_cmp qr.report or.report &&
	repair_after_
}
repair_after_() {
	check_report q.img qemu-img check >qa.report &&
	check_report o.img qemu-img check >oa.report &&
	test_cmp qa.report oa.report &&
	test "$(bits q.img)" = "$(bits o.img)" &&
	read_same q.img && ra_q_=$rs_q_ && { mv q.raw qr.raw 2>/dev/null; true; } &&
	read_same o.img &&
	if test $ra_q_ = 0; then
		test $rs_q_ = 0 && cmp qr.raw q.raw
	else
		test $rs_q_ != 0
	fi
}

# repair_beats IMG: where qemu-img check -r all fails (exit 1: its own
# corruption guard stops its rebuild with an I/O error) or rebuilds the
# refcount structures far past the end of the file, img-check -r all
# leaves the image clean, no bigger than qemu-img leaves it, reading what
# IMG read (man/img-check.1, REPAIR). Deliberate: the test asserts ours.
# qemu-img 7.2 fails on a refcount table entry that is not cluster aligned
# (060 unaligned reftable entry, dirty corrupt image, discarding with an
# unaligned refblock, refblock covered by an unaligned refblock), and
# writes its new structures at 4 GiB (refcount table offset 0) or 64 GiB
# (non-covered in-bounds refblock), counting 2 corruptions of its own
# making among the fixed ones there.
repair_beats() {
	cp "$1" q.img && cp "$1" o.img &&
	{ qemu-img check -r all q.img >/dev/null 2>&1; rb_q_=$?; true; } &&
	echo "qemu-img check -r all exits $rb_q_, file size $(wc -c <q.img)" &&
	check_report o.img img-check -r all >or.report &&
	cat or.report &&
	grep "^exit=0" or.report &&
	test_expect_code 0 qemu-img check o.img >/dev/null &&
	test "$(bits o.img)" = 0 &&
	{ test $rb_q_ != 0 || test $(wc -c <q.img) -gt $(wc -c <o.img); } &&
	read_same "$1" && rb_r_=$rs_q_ && { mv q.raw qr.raw 2>/dev/null; true; } &&
	read_same o.img &&
	if test $rb_r_ = 0; then cmp qr.raw o.raw; else true; fi
}

# qio_overlap IMG 'command'...: qemu-io commands on IMG opened read-write
# with every metadata overlap check on, as 060 opens it; failures of the
# commands themselves are expected and ignored.
qio_overlap() {
	qo_img_=$1
	shift
	set -- "$@" --
	while test "$1" != --; do
		set -- "$@" -c "$1"
		shift
	done
	shift
	qemu-io --image-opts "driver=qcow2,file.filename=$qo_img_,overlap-check=all" \
		"$@" >/dev/null 2>&1
	true
}

# === 039: lazy refcounts and the dirty bit ==============================

test_expect_success '039: image is clean after a clean shutdown' '
	qemu-img create -q -f qcow2 -o compat=1.1,lazy_refcounts=on clean.qcow2 128M &&
	qio qcow2 clean.qcow2 "write -P 0x5a 0 512" &&
	test "$(bits clean.qcow2)" = 0 &&
	check_same_as_qemu clean.qcow2 &&
	grep "^exit=0" q.report &&
	info_same clean.qcow2 &&
	grep "dirty-flag=false" qi.flags
'

test_expect_success '039: a writer killed with lazy refcounts leaves the image dirty' '
	qemu-img create -q -f qcow2 -o compat=1.1,lazy_refcounts=on dirty.qcow2 128M &&
	qio_crash qcow2 dirty.qcow2 "write -P 0x5a 0 512" &&
	test "$(bits dirty.qcow2)" = 1 &&
	check_same_as_qemu dirty.qcow2 &&
	grep "corruptions=2" q.report &&
	grep "^exit=2" q.report &&
	info_same dirty.qcow2 &&
	grep "dirty-flag=true" qi.flags
'

test_expect_success '039: read-only access to the dirty image still works' '
	read_same dirty.qcow2 &&
	pattern_at o.raw 0 512 0x5a &&
	test "$(bits dirty.qcow2)" = 1
'

test_expect_success '039: repairing the dirty image succeeds and clears the bit' '
	repair_same dirty.qcow2 &&
	grep "^exit=0" qr.report &&
	grep "corruptions-fixed=1" qr.report &&
	test "$(bits o.img)" = 0 &&
	test_expect_code 0 img-check o.img
'

test_expect_success '039: data is still readable after the repair' '
	pattern_at o.raw 0 512 0x5a &&
	qemu-io -r -f qcow2 -c "read -P 0x5a 0 512" o.img >qio.out &&
	! grep -i "fail\|mismatch" qio.out
'

# QEMU repairs a dirty image when it opens it read-write. Our read-write
# commands are img-check -r and img-compact; img-compact refuses an image
# with errors (man/img-compact.1) rather than repairing it on the way, and
# leaves it untouched. A dirty image whose refcounts happen to be right is
# compacted and left clean, as QEMU leaves it.
test_expect_success '039: opening a dirty image read-write repairs it (qemu-io write; img-compact refuses)' '
	qemu-img create -q -f qcow2 -o compat=1.1,lazy_refcounts=on rw.qcow2 128M &&
	qio_crash qcow2 rw.qcow2 "write -P 0x5a 0 512" &&
	test "$(bits rw.qcow2)" = 1 &&
	cp rw.qcow2 q.img && cp rw.qcow2 o.img &&
	qio qcow2 q.img "write 0 512" &&
	test "$(bits q.img)" = 0 &&
	test_expect_code 0 qemu-img check q.img &&
	test_expect_code 1 img-compact o.img 2>o.err &&
	test_line_count = 1 o.err &&
	cmp rw.qcow2 o.img &&
	damage clean.qcow2 cleandirty.qcow2 72 be64 1 &&
	cp cleandirty.qcow2 q.img && cp cleandirty.qcow2 o.img &&
	qio qcow2 q.img "read 0 512" &&
	test "$(bits q.img)" = 0 &&
	img-compact o.img &&
	test "$(bits o.img)" = 0 &&
	test_expect_code 0 img-check o.img &&
	qemu-img compare q.img o.img
'

test_expect_success '039: a writer killed without lazy refcounts leaves a clean image' '
	qemu-img create -q -f qcow2 -o compat=1.1,lazy_refcounts=off off.qcow2 128M &&
	qio_crash qcow2 off.qcow2 "write -P 0x5a 0 512" &&
	test "$(bits off.qcow2)" = 0 &&
	check_same_as_qemu off.qcow2 &&
	grep "^exit=0" q.report &&
	info_same off.qcow2 &&
	read_same off.qcow2 &&
	pattern_at o.raw 0 512 0x5a
'

test_expect_success '039: committing to a backing file with lazy refcounts leaves both clean' '
	qemu-img create -q -f qcow2 -o compat=1.1,lazy_refcounts=on cbase.qcow2 128M &&
	qemu-img create -q -f qcow2 -o compat=1.1,lazy_refcounts=on \
		-b cbase.qcow2 -F qcow2 ctop.qcow2 128M &&
	qio qcow2 ctop.qcow2 "write -P 7 0 512" &&
	qemu-img commit -q ctop.qcow2 &&
	test "$(bits ctop.qcow2)" = 0 &&
	test "$(bits cbase.qcow2)" = 0 &&
	check_same_as_qemu ctop.qcow2 &&
	grep "^exit=0" q.report &&
	check_same_as_qemu cbase.qcow2 &&
	grep "^exit=0" q.report &&
	read_same ctop.qcow2 &&
	pattern_at o.raw 0 512 7
'

test_expect_success '039: lazy refcounts turned on at runtime, writer killed: dirty' '
	qemu-img create -q -f qcow2 -o compat=1.1,lazy_refcounts=off rton.qcow2 128M &&
	qio_crash qcow2 rton.qcow2 "reopen -o lazy-refcounts=on" "write -P 0x5a 0 512" &&
	test "$(bits rton.qcow2)" = 1 &&
	check_same_as_qemu rton.qcow2 &&
	grep "^exit=2" q.report &&
	info_same rton.qcow2 &&
	read_same rton.qcow2 &&
	repair_same rton.qcow2
'

test_expect_success '039: lazy refcounts turned off at runtime, writer killed: clean' '
	qemu-img create -q -f qcow2 -o compat=1.1,lazy_refcounts=on rtoff.qcow2 128M &&
	qio_crash qcow2 rtoff.qcow2 "reopen -o lazy-refcounts=off" "write -P 0x5a 0 512" &&
	test "$(bits rtoff.qcow2)" = 0 &&
	check_same_as_qemu rtoff.qcow2 &&
	grep "^exit=0" q.report &&
	info_same rtoff.qcow2
'

# A version 2 header ends at byte 72: it has no incompatible feature
# field, so a 1 where v3 keeps the dirty bit is no dirty bit at all (the
# bytes are read as the end of the header extensions), and a killed v2
# writer (no lazy refcounts possible) leaves refcounts right.
test_expect_success '039: the dirty bit on a version 2 image' '
	qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 128M &&
	qio_crash qcow2 v2.qcow2 "write -P 0x5a 0 512" &&
	check_same_as_qemu v2.qcow2 &&
	grep "^exit=0" q.report &&
	damage v2.qcow2 v2dirty.qcow2 72 be64 1 &&
	check_same_as_qemu v2dirty.qcow2 &&
	grep "^exit=0" q.report &&
	info_same v2dirty.qcow2 &&
	grep "dirty-flag=false" qi.flags &&
	read_same v2dirty.qcow2 &&
	pattern_at o.raw 0 512 0x5a &&
	repair_same v2dirty.qcow2 &&
	test_must_fail qemu-img create -q -f qcow2 -o compat=0.10,lazy_refcounts=on v2lazy.qcow2 1M 2>/dev/null
'

# === 060: overlapping metadata and the corrupt bit =======================
#
# 060 assumes the layout qemu-img create gives a 64 MiB image with 64 KiB
# clusters: refcount table at 0x10000, refcount block at 0x20000, L1
# table at 0x30000, the first L2 table (once written) at 0x40000. The
# setup makes sure of it. Where 060 lets a running qemu-io detect the
# damage (which sets the corrupt bit), qemu-io does the same here and both
# tools are then compared on the image it left.

rt=65536
rb=131072
l1=196608
l2=262144

# fresh NAME: a new 64 MiB image, default options.
fresh() {
	rm -f "$1" &&
	qemu-img create -q -f qcow2 "$1" 64M
}

test_expect_success '060: setup: the layout 060 assumes' '
	fresh layout.qcow2 &&
	qio qcow2 layout.qcow2 "write 0 64k" &&
	test $(img-poke layout.qcow2 48 read be64) = $rt &&
	test $(img-poke layout.qcow2 40 read be64) = $l1 &&
	test $(img-poke layout.qcow2 $rt read be64) = $rb &&
	test $(img-poke layout.qcow2 $l1 read be32) = 2147483648 &&
	test $(img-poke layout.qcow2 $((l1 + 4)) read be32) = $l2 &&
	test $(img-poke layout.qcow2 $((l2 + 4)) read be32) = 327680
'

test_expect_success '060: L2 table pointing at the L1 table, corrupt bit set by a write' '
	fresh l2l1.qcow2 &&
	img-poke l2l1.qcow2 $l1 be64 0x8000000000030000 &&
	check_same_as_qemu l2l1.qcow2 &&
	grep "corruptions=1" q.report &&
	test "$(bits l2l1.qcow2)" = 0 &&
	qio_overlap l2l1.qcow2 "write -P 0x2a 0 512" &&
	test "$(bits l2l1.qcow2)" = 2 &&
	info_same l2l1.qcow2 &&
	grep "corrupt=true" qi.flags &&
	check_same_as_qemu l2l1.qcow2 &&
	test_must_fail qemu-io -f qcow2 -c "read 0 512" l2l1.qcow2 >/dev/null 2>&1 &&
	cp l2l1.qcow2 o.img &&
	test_expect_code 1 img-compact o.img 2>o.err &&
	test_line_count = 1 o.err &&
	cmp l2l1.qcow2 o.img &&
	qemu-io -r -f qcow2 -c "read 0 512" l2l1.qcow2 >/dev/null &&
	read_same l2l1.qcow2 &&
	# Deliberate: qemu-img -r all stops with an I/O error (exit 1) where
	# its guard meets the L2 table inside the L1 table; img-check repairs
	# nothing of overlapping tables and reports the corruption (exit 2).
	cp l2l1.qcow2 q.img && cp l2l1.qcow2 o.img &&
	test_expect_code 1 qemu-img check -r all q.img >/dev/null 2>&1 &&
	check_report o.img img-check -r all >or.report &&
	test_cmp o.report or.report &&
	cmp l2l1.qcow2 o.img
'

test_expect_success '060: data cluster pointing at the refcount block, repair clears the corrupt bit' '
	fresh d2rb.qcow2 &&
	truncate -s $((l2 + 65536)) d2rb.qcow2 &&
	img-poke d2rb.qcow2 $l1 be64 0x8000000000040000 &&
	img-poke d2rb.qcow2 $((rb + 8)) be16 1 &&
	img-poke d2rb.qcow2 $l2 be64 0x8000000000020000 &&
	check_same_as_qemu d2rb.qcow2 &&
	grep "corruptions=2" q.report &&
	read_same d2rb.qcow2 &&
	qio_overlap d2rb.qcow2 "write -P 0x2a 0 512" &&
	test "$(bits d2rb.qcow2)" = 2 &&
	check_same_as_qemu d2rb.qcow2 &&
	repair_same d2rb.qcow2 &&
	test "$(bits o.img)" = 0 &&
	qio qcow2 o.img "write -P 0x2a 0 512" &&
	test "$(bits o.img)" = 0 &&
	test_expect_code 0 qemu-img check o.img
'

test_expect_success '060: data cluster pointing at an inactive L2 table' '
	fresh inact.qcow2 &&
	qio qcow2 inact.qcow2 "write -P 1 0 512" &&
	qemu-img snapshot -c foo inact.qcow2 &&
	qio qcow2 inact.qcow2 "write -P 2 0 512" &&
	l2new=$(img-poke inact.qcow2 $((l1 + 4)) read be32) &&
	test $l2new = 524288 &&
	img-poke inact.qcow2 $l2new be64 0x8000000000040000 &&
	check_same_as_qemu inact.qcow2 &&
	read_same inact.qcow2 &&
	qio_overlap inact.qcow2 "write -P 3 0 512" &&
	test "$(bits inact.qcow2)" = 2 &&
	check_same_as_qemu inact.qcow2 &&
	repair_same inact.qcow2 &&
	for f in q.img o.img; do
		qio qcow2 $f "write -P 4 0 512" &&
		test "$(bits $f)" = 0 &&
		qemu-io -r -f qcow2 -c "read -P 4 0 512" $f >$f.read &&
		! grep -i "fail\|mismatch" $f.read &&
		qemu-img snapshot -a foo $f &&
		test_expect_code 0 qemu-img check $f &&
		qemu-io -r -f qcow2 -c "read -P 1 0 512" $f >$f.read &&
		! grep -i "fail\|mismatch" $f.read || return 1
	done &&
	qemu-img compare q.img o.img
'

# The in-flight part (blkdebug suspending a COW) needs QEMU running; the
# damaged image it starts from is ported.
test_expect_success '060: overlap while COW is in flight (the damaged image)' '
	qemu-img create -q -f qcow2 cowbase.qcow2 1G &&
	qio qcow2 cowbase.qcow2 "write 0k 64k" &&
	qemu-img create -q -f qcow2 -b cowbase.qcow2 -F qcow2 cow.qcow2 1G &&
	qio qcow2 cow.qcow2 "write 0k 64k" "write 512M 64k" &&
	img-poke cow.qcow2 $l2 be64 0 &&
	img-poke cow.qcow2 $((rb + 10)) be16 0 &&
	img-poke cow.qcow2 $((rb + 12)) be16 0 &&
	check_same_as_qemu cow.qcow2 &&
	read_same cow.qcow2 &&
	repair_same cow.qcow2
'

test_expect_success '060: unallocated image header' '
	fresh hdr.qcow2 &&
	qio qcow2 hdr.qcow2 "write 0 64k" &&
	img-poke hdr.qcow2 $rb be16 0 &&
	check_same_as_qemu hdr.qcow2 &&
	read_same hdr.qcow2 &&
	repair_same hdr.qcow2 &&
	qio_overlap hdr.qcow2 "write 64k 64k" &&
	check_same_as_qemu hdr.qcow2 &&
	read_same hdr.qcow2 &&
	repair_same hdr.qcow2
'

# qemu-img amend -o compat=0.10 is a rewrite in place; ours is
# img-convert -o compat=0.10 into a new file: both must fail where the
# data cannot be read.
test_expect_success '060: unaligned L1 entry' '
	fresh ul1.qcow2 &&
	qio qcow2 ul1.qcow2 "write 0 64k" &&
	img-poke ul1.qcow2 $l1 be64 0x8000000000042a00 &&
	check_same_as_qemu ul1.qcow2 &&
	read_same ul1.qcow2 &&
	test_must_fail qemu-io -r -f qcow2 -c "read 0 64k" ul1.qcow2 >/dev/null 2>&1 ||
	qemu-io -r -f qcow2 -c "read 0 64k" ul1.qcow2 | grep -i "failed" &&
	repair_same ul1.qcow2 &&
	cp ul1.qcow2 q.img &&
	test_must_fail qemu-img amend -o compat=0.10 q.img 2>/dev/null &&
	test_must_fail img-convert -O qcow2 -o compat=0.10 ul1.qcow2 v2.img 2>o.err &&
	test_line_count = 1 o.err
'

test_expect_success '060: unaligned L2 entry' '
	fresh ul2.qcow2 &&
	qio qcow2 ul2.qcow2 "write 0 64k" &&
	img-poke ul2.qcow2 $l2 be64 0x8000000000052a00 &&
	check_same_as_qemu ul2.qcow2 &&
	read_same ul2.qcow2 &&
	repair_same ul2.qcow2
'

test_expect_success '060: unaligned pre-allocated zero cluster' '
	fresh uz.qcow2 &&
	qio qcow2 uz.qcow2 "write 0 64k" &&
	img-poke uz.qcow2 $l2 be64 0x8000000000052a01 &&
	check_same_as_qemu uz.qcow2 &&
	read_same uz.qcow2 &&
	repair_same uz.qcow2 &&
	cp uz.qcow2 q.img &&
	test_must_fail qemu-img amend -o compat=0.10 q.img 2>/dev/null &&
	rm -f v2.img &&
	test_must_fail img-convert -O qcow2 -o compat=0.10 uz.qcow2 v2.img 2>o.err &&
	test_line_count = 1 o.err
'

test_expect_success '060: unaligned refcount table entry' '
	fresh urt.qcow2 &&
	img-poke urt.qcow2 $rt be64 0x22a00 &&
	check_same_as_qemu urt.qcow2 &&
	read_same urt.qcow2 &&
	repair_beats urt.qcow2 &&
	qio_overlap urt.qcow2 "write 0 64k" &&
	check_same_as_qemu urt.qcow2 &&
	repair_beats urt.qcow2
'

test_expect_success '060: non-fatal corruption on freeing' '
	fresh free.qcow2 &&
	qio qcow2 free.qcow2 "write 0 64k" &&
	img-poke free.qcow2 $l2 be64 0x8000000000052a00 &&
	qio_overlap free.qcow2 "discard 0 64k" &&
	test "$(bits free.qcow2)" = 0 &&
	check_same_as_qemu free.qcow2 &&
	read_same free.qcow2 &&
	repair_same free.qcow2
'

# Read-only, the damage is reported and the image left alone.
test_expect_success '060: read-only corruption report' '
	fresh rocr.qcow2 &&
	qio qcow2 rocr.qcow2 "write 0 64k" &&
	img-poke rocr.qcow2 $l2 be64 0x8000000000052a00 &&
	cp rocr.qcow2 rocr.orig &&
	qemu-io -r -f qcow2 -c "read 0 64k" -c "read 0 64k" rocr.qcow2 >qio.out 2>&1 ;
	grep -i "failed" qio.out &&
	cmp rocr.orig rocr.qcow2 &&
	read_same rocr.qcow2 &&
	{ qemu-img map --output=json rocr.qcow2 >/dev/null 2>&1; qm=$?; true; } &&
	{ img-map --output=json rocr.qcow2 >/dev/null 2>o.err; om=$?; true; } &&
	no_sanitizer_report o.err &&
	test $qm = $om &&
	cmp rocr.orig rocr.qcow2
'

test_expect_success '060: non-fatal and then fatal corruption report' '
	fresh nff.qcow2 &&
	qio qcow2 nff.qcow2 "write 0 128k" &&
	img-poke nff.qcow2 $l2 be64 0x8000000000052a00 &&
	img-poke nff.qcow2 $((l2 + 8)) be64 0x8000000000062a00 &&
	check_same_as_qemu nff.qcow2 &&
	qio_overlap nff.qcow2 "discard 0 64k" "read 64k 64k" &&
	test "$(bits nff.qcow2)" = 2 &&
	check_same_as_qemu nff.qcow2 &&
	read_same nff.qcow2 &&
	repair_same nff.qcow2
'

test_expect_success '060: empty refcount table' '
	fresh ert.qcow2 &&
	img-poke ert.qcow2 $rt be64 0 &&
	check_same_as_qemu ert.qcow2 &&
	repair_same ert.qcow2 &&
	qio_overlap ert.qcow2 "write 0 64k" &&
	check_same_as_qemu ert.qcow2 &&
	read_same ert.qcow2 &&
	repair_same ert.qcow2
'

test_expect_success '060: empty refcount table with valid L1 and L2 tables' '
	fresh ertl.qcow2 &&
	qio qcow2 ertl.qcow2 "write 0 64k" &&
	img-poke ertl.qcow2 $rt be64 0 &&
	check_same_as_qemu ertl.qcow2 &&
	read_same ertl.qcow2 &&
	repair_same ertl.qcow2 &&
	qio_overlap ertl.qcow2 "write 0 128k" &&
	check_same_as_qemu ertl.qcow2 &&
	read_same ertl.qcow2 &&
	repair_same ertl.qcow2
'

test_expect_success '060: empty refcount block' '
	fresh erb.qcow2 &&
	img-poke erb.qcow2 $rb be64 0 &&
	check_same_as_qemu erb.qcow2 &&
	repair_same erb.qcow2 &&
	qio_overlap erb.qcow2 "write 0 64k" &&
	check_same_as_qemu erb.qcow2 &&
	read_same erb.qcow2 &&
	repair_same erb.qcow2
'

test_expect_success '060: empty refcount block with compressed write' '
	fresh erbc.qcow2 &&
	qio qcow2 erbc.qcow2 "write 64k 64k" &&
	img-poke erbc.qcow2 $rb be64 0 &&
	check_same_as_qemu erbc.qcow2 &&
	repair_same erbc.qcow2 &&
	qio_overlap erbc.qcow2 "write -c 0k 64k" &&
	check_same_as_qemu erbc.qcow2 &&
	read_same erbc.qcow2 &&
	repair_same erbc.qcow2
'

test_expect_success '060: zero refcount table size' '
	fresh zrt.qcow2 &&
	img-poke zrt.qcow2 56 be32 0 &&
	test_must_fail qemu-io -f qcow2 -c "write 0 64k" zrt.qcow2 >/dev/null 2>&1 &&
	check_same_as_qemu zrt.qcow2 &&
	read_same zrt.qcow2 &&
	repair_same zrt.qcow2
'

test_expect_success '060: incorrect refcount table offset' '
	fresh zro.qcow2 &&
	img-poke zro.qcow2 48 be64 0 &&
	test_must_fail qemu-io -f qcow2 -c "write 0 64k" zro.qcow2 >/dev/null 2>&1 &&
	check_same_as_qemu zro.qcow2 &&
	read_same zro.qcow2 &&
	repair_beats zro.qcow2
'

# QEMU refuses to open the dirty image: its open-time repair meets the
# unaligned refcount block. Compared on the image as poked and as that
# failed open left it.
test_expect_success '060: dirty corrupt image' '
	fresh dc.qcow2 &&
	img-poke dc.qcow2 $rt be64 0xffff2a00 &&
	img-poke dc.qcow2 72 be64 1 &&
	check_same_as_qemu dc.qcow2 &&
	info_same dc.qcow2 &&
	read_same dc.qcow2 &&
	repair_beats dc.qcow2 &&
	test_must_fail qemu-io -f qcow2 -c close dc.qcow2 >/dev/null 2>&1 &&
	check_same_as_qemu dc.qcow2 &&
	read_same dc.qcow2 &&
	repair_same dc.qcow2
'

test_expect_success '060: writing to an unaligned preallocated zero cluster in the header' '
	fresh zh.qcow2 &&
	qio qcow2 zh.qcow2 "write 0 64k" "discard 0 64k" &&
	img-poke zh.qcow2 $l2 be64 0x8000000000002a01 &&
	check_same_as_qemu zh.qcow2 &&
	read_same zh.qcow2 &&
	repair_same zh.qcow2 &&
	qio_overlap zh.qcow2 "write 0 64k" &&
	test "$(bits zh.qcow2)" = 2 &&
	check_same_as_qemu zh.qcow2 &&
	read_same zh.qcow2 &&
	repair_same zh.qcow2
'

test_expect_success '060: discarding with an unaligned refcount block' '
	fresh drb.qcow2 &&
	qio qcow2 drb.qcow2 "write 0 128k" &&
	img-poke drb.qcow2 $rt be64 0x2a00 &&
	check_same_as_qemu drb.qcow2 &&
	read_same drb.qcow2 &&
	repair_beats drb.qcow2 &&
	qio_overlap drb.qcow2 "discard 0 65537" &&
	check_same_as_qemu drb.qcow2 &&
	read_same drb.qcow2 &&
	repair_beats drb.qcow2
'

# 060 then shrinks the image with qemu-img resize, which we do not have:
# the damaged images are compared.
test_expect_success '060: out-of-bounds refcount block' '
	fresh oob.qcow2 &&
	img-poke oob.qcow2 $((rt + 8)) be64 0x00ffffff00000000 &&
	check_same_as_qemu oob.qcow2 &&
	read_same oob.qcow2 &&
	repair_same oob.qcow2
'

test_expect_success '060: non-covered in-bounds refcount block' '
	rm -f nc.qcow2 &&
	qemu-img create -q -f qcow2 -o refcount_bits=1 nc.qcow2 64M &&
	img-poke nc.qcow2 $((rt + 8)) be64 0x1000000000 &&
	check_same_as_qemu nc.qcow2 &&
	read_same nc.qcow2 &&
	repair_beats nc.qcow2
'

test_expect_success '060: refcount block covered by an unaligned refcount block' '
	rm -f ncu.qcow2 &&
	qemu-img create -q -f qcow2 -o refcount_bits=1 ncu.qcow2 64M &&
	img-poke ncu.qcow2 $((rt + 8)) be64 0x1000000000 &&
	img-poke ncu.qcow2 $((rt + 16)) be64 0x200 &&
	check_same_as_qemu ncu.qcow2 &&
	read_same ncu.qcow2 &&
	repair_beats ncu.qcow2
'

# 060 writes through a running QEMU (qemu-system) and quits; qemu-io does
# the write here.
test_expect_success '060: a write to an image with an empty refcount table, then shutdown' '
	fresh sd.qcow2 &&
	img-poke sd.qcow2 $rt be64 0 &&
	qio_overlap sd.qcow2 "write 0 512" &&
	check_same_as_qemu sd.qcow2 &&
	read_same sd.qcow2 &&
	repair_same sd.qcow2
'

# An incoming (inactive) image is read-only to QEMU: the damage must not
# mark it corrupt. qemu-img and ours read it without writing.
test_expect_success '060: incoming inactive corrupted image (read-only open)' '
	fresh inc.qcow2 &&
	img-poke inc.qcow2 $l1 be64 0x2a2a2a2a &&
	cp inc.qcow2 inc.orig &&
	qemu-io -r -f qcow2 -c "read 0 512" inc.qcow2 >/dev/null 2>&1;
	cmp inc.orig inc.qcow2 &&
	read_same inc.qcow2 &&
	cmp inc.orig inc.qcow2 &&
	info_same inc.qcow2 &&
	grep "corrupt=false" qi.flags &&
	check_same_as_qemu inc.qcow2 &&
	cmp inc.orig inc.qcow2
'

# Not an iotest case of its own: the corrupt bit alone, set by a poke on a
# consistent image. QEMU opens it read-only, refuses it read-write, and
# check -r all clears the bit; img-compact refuses it as QEMU's writers do.
test_expect_success '060: the corrupt bit set by a poke' '
	fresh cbit.qcow2 &&
	qio qcow2 cbit.qcow2 "write -P 9 0 64k" "write -z 64k 64k" &&
	img-poke cbit.qcow2 72 be64 2 &&
	check_same_as_qemu cbit.qcow2 &&
	grep "^exit=0" q.report &&
	info_same cbit.qcow2 &&
	grep "corrupt=true" qi.flags &&
	read_same cbit.qcow2 &&
	test_must_fail qemu-io -f qcow2 -c "read 0 512" cbit.qcow2 >/dev/null 2>&1 &&
	cp cbit.qcow2 o.img &&
	test_expect_code 1 img-compact o.img 2>o.err &&
	test_line_count = 1 o.err &&
	grep "marked corrupt" o.err &&
	cmp cbit.qcow2 o.img &&
	repair_same cbit.qcow2 &&
	test "$(bits o.img)" = 0 &&
	img-compact o.img &&
	test_expect_code 0 img-check o.img
'

# Not an iotest case of its own (060 makes a compressed write land at
# offset 0): a compressed cluster whose entry points into the L1 table.
test_expect_success '060: compressed cluster entry pointing into the L1 table' '
	fresh comp.qcow2 &&
	qio qcow2 comp.qcow2 "write -c -P 5 0 64k" &&
	e=$(img-poke comp.qcow2 $l2 read be64) &&
	test $((e >> 62 & 1)) = 1 &&
	img-poke comp.qcow2 $l2 be64 $(( (e & ~((1 << 54) - 1)) | l1 )) &&
	check_same_as_qemu comp.qcow2 &&
	read_same comp.qcow2 &&
	repair_same comp.qcow2
'

test_done
