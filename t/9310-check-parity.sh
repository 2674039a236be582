#!/bin/sh
# 9310-check-parity.sh: on damaged images, img-check's JSON carries the same keys and counts as qemu-img check's, and exits the same.
test_description='img-check counts as qemu-img check on damaged images'
. "$(dirname "$0")/lib.sh"

# check_keys IMG JSON: every key of a check report but the file name, one
# per line, sorted ("key=value").
check_keys() {
	perl -MJSON::PP -e '
		local $/;
		open my $fh, "<", $ARGV[0] or die "check_keys: $!\n";
		my $doc = JSON::PP->new->decode(<$fh>);
		delete $doc->{filename};
		print "$_=$doc->{$_}\n" for sort keys %$doc;
	' "$1"
}

# same_report IMG: img-check --output=json and qemu-img check --output=json
# give the same keys and values, and both commands the same exit status.
same_report() {
	qemu-img check --output=json "$1" >q.json 2>/dev/null
	sr_q_=$?
	img-check --output=json "$1" >o.json 2>o.err
	sr_o_=$?
	no_sanitizer_report o.err &&
	check_keys q.json >q.keys &&
	check_keys o.json >o.keys &&
	test_cmp q.keys o.keys &&
	{ test $sr_q_ = $sr_o_ ||
		{ echo >&2 "exit: qemu-img $sr_q_, img-check $sr_o_"; false; }; }
}

# a.qcow2: 64 KiB clusters; refcount table at 0x10000, its one block at
# 0x20000; data in the first cluster.
test_expect_success 'setup' '
	qemu-img create -q -f qcow2 a.qcow2 1M &&
	qio qcow2 a.qcow2 "write -P 0x11 0 64k" &&
	test $(img-poke a.qcow2 48 read be64) = $((0x10000)) &&
	test $(img-poke a.qcow2 $((0x10000)) read be64) = $((0x20000)) &&
	same_report a.qcow2
'

test_expect_success 'refcount table entry not cluster aligned: a corruption, the end offset' '
	damage a.qcow2 rb.qcow2 $((0x10000)) be64 $((0x20200)) &&
	same_report rb.qcow2 &&
	grep -Fx "ERROR refcount block 0 is not cluster aligned; refcount table entry corrupted" o.err &&
	cp rb.qcow2 w.qcow2 &&
	img-check -r all w.qcow2 >/dev/null 2>&1 &&
	same_report w.qcow2 &&
	qemu-img compare a.qcow2 w.qcow2
'

# z.qcow2: data in its first two clusters, the second then zeroed in
# place (a preallocated zero cluster, entry 1 of the L2 table), its offset
# then moved off the cluster boundary.
test_expect_success 'preallocated zero cluster not cluster aligned: -r all repairs it as qemu-img' '
	qemu-img create -q -f qcow2 z.qcow2 1M &&
	qio qcow2 z.qcow2 "write -P 0x11 0 128k" "write -z 64k 64k" &&
	l2=$(( $(img-poke z.qcow2 $(($(img-poke z.qcow2 40 read be64) + 4)) read be32) & 0xffffff00 )) &&
	e=$(img-poke z.qcow2 $((l2 + 12)) read be32) &&
	test $((e & 1)) = 1 &&
	img-poke z.qcow2 $((l2 + 12)) be32 $((e + 512)) &&
	same_report z.qcow2 &&
	cp z.qcow2 zq.qcow2 && cp z.qcow2 zo.qcow2 &&
	qemu-img check -r all zq.qcow2 >/dev/null 2>&1 &&
	img-check -r all zo.qcow2 >/dev/null 2>err &&
	grep -Fx "Repairing offset=$(printf %x $(((e & 0xffffff00) + 512))): Preallocated cluster is not properly aligned; L2 entry corrupted." err &&
	same_report zo.qcow2 &&
	qemu-img map --output=json zq.qcow2 >q.map &&
	qemu-img map --output=json zo.qcow2 >o.map &&
	test_cmp q.map o.map
'

# The refcount table's place and size zeroed in the header (as in
# qemu-iotests 060): reading refuses it, as QEMU does; a check opens it,
# -r all rebuilds the refcount structures from the tables.
test_expect_success 'no refcount table at all: checked and rebuilt, as by qemu-img' '
	damage a.qcow2 nr.qcow2 48 be64 0 56 be32 0 &&
	open_fails img-info nr.qcow2 &&
	same_report nr.qcow2 &&
	cp nr.qcow2 nq.qcow2 && cp nr.qcow2 no.qcow2 &&
	qemu-img check -r all nq.qcow2 >/dev/null 2>&1 &&
	img-check -r all no.qcow2 >/dev/null 2>err &&
	grep -F "Rebuilt the refcount structures" err &&
	same_report no.qcow2 &&
	test "$(json_get o.json corruptions leaks)" = "$(printf "corruptions=<absent>\nleaks=<absent>")" &&
	qemu-img compare a.qcow2 no.qcow2
'

# s.qcow2: one snapshot; then its L1 table offset unaligned, its L1 size
# absurd, or the snapshot table moved past the end of the file. qemu-img
# opens each and reads the guest data (the snapshot fails only when used):
# so do info, map and convert; the checks agree; a writer refuses.
test_expect_success 'damaged snapshot table: readers read, as qemu-img' '
	qemu-img create -q -f qcow2 s.qcow2 1M &&
	qio qcow2 s.qcow2 "write -P 0x21 0 64k" &&
	qemu-img snapshot -c one s.qcow2 &&
	so=$(img-poke s.qcow2 64 read be64) &&
	damage s.qcow2 s-l1off.qcow2 $so be64 $(($(img-poke s.qcow2 $so read be64) + 512)) &&
	damage s.qcow2 s-l1size.qcow2 $((so + 8)) be32 $((0x7fffffff)) &&
	damage s.qcow2 s-eof.qcow2 64 be64 $((0x1000000)) &&
	for f in s-l1off s-l1size s-eof; do
		img-info $f.qcow2 >/dev/null &&
		img-map $f.qcow2 >/dev/null &&
		rm -f $f.raw &&
		img-convert -O raw $f.qcow2 $f.raw &&
		qemu-img compare -q s.qcow2 $f.raw &&
		same_report $f.qcow2 || return 1
	done &&
	test_expect_code 1 img-compact s-l1off.qcow2 2>err &&
	grep -F "(repair it first: img-check -r all)" err
'

# An L2 entry with reserved bits set (bits 56-61, and 48-55 which then
# place the data past the end of the file): qemu-img reads it (zeros),
# and so do we; the checks agree.
test_expect_success 'L2 entry with reserved bits set: read as qemu-img reads it' '
	l2=$(img-poke a.qcow2 $(($(img-poke a.qcow2 40 read be64) + 4)) read be32) &&
	damage a.qcow2 res.qcow2 $l2 u8 $((0xbf)) $((l2 + 1)) u8 $((0xff)) &&
	same_report res.qcow2 &&
	rm -f res.raw qres.raw &&
	img-convert -O raw res.qcow2 res.raw &&
	qemu-img convert -O raw res.qcow2 qres.raw &&
	cmp res.raw qres.raw &&
	img-map --output=json res.qcow2 >o.map &&
	qemu-img map --output=json res.qcow2 >q.map &&
	test_cmp q.map o.map
'

# An L2 table past the end of the file, wholly or in part (l2cut: its
# first half, copied from the real one, is the end of the file): QEMU reads the
# missing part as zeros (a qcow2 table; for qcow v1 only a table wholly
# past the end, one cut short fails), so the guest data it maps reads as
# unallocated; the checks agree, and writers still refuse.
test_expect_success 'L2 table past the end of the file: read as qemu-img reads it' '
	l1=$(img-poke a.qcow2 40 read be64) &&
	size=$(stat -c %s a.qcow2) &&
	damage a.qcow2 l2eof.qcow2 $((l1 + 4)) be32 $((0x10000000)) &&
	l2=$(img-poke a.qcow2 $((l1 + 4)) read be32) &&
	damage a.qcow2 l2cut.qcow2 $((l1 + 4)) be32 $size &&
	dd if=a.qcow2 bs=32k skip=$((l2 / 32768)) count=1 2>/dev/null >>l2cut.qcow2 &&
	for f in l2eof l2cut; do
		rm -f $f.raw q$f.raw &&
		img-convert -O raw $f.qcow2 $f.raw &&
		qemu-img convert -O raw $f.qcow2 q$f.raw &&
		cmp $f.raw q$f.raw &&
		img-map --output=json $f.qcow2 >o.map &&
		qemu-img map --output=json $f.qcow2 >q.map &&
		test_cmp q.map o.map &&
		same_report $f.qcow2 &&
		test_expect_code 1 img-compact $f.qcow2 2>err || return 1
	done &&
	qemu-img create -q -f qcow v.qcow 1M &&
	qio qcow v.qcow "write -P 1 0 16k" &&
	vl1=$(img-poke v.qcow 44 read be32) &&
	vsize=$(stat -c %s v.qcow) &&
	damage v.qcow veof.qcow $((vl1 + 4)) be32 $((0x100000)) &&
	damage v.qcow vcut.qcow $((vl1 + 4)) be32 $((vsize - 512)) &&
	rm -f veof.raw qveof.raw vcut.raw &&
	img-convert -O raw veof.qcow veof.raw &&
	qemu-img convert -O raw veof.qcow qveof.raw &&
	cmp veof.raw qveof.raw &&
	test_must_fail qemu-img convert -O raw vcut.qcow vcut.raw &&
	test_must_fail img-convert -O raw vcut.qcow vcut.raw
'

test_done
