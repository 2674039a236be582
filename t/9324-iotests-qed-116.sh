#!/bin/sh
# 9324-iotests-qed-116.sh: qemu-iotests 116 (QED open validation) ported: each header field it damages, qemu's answer and ours side by side, img-check against qemu-img check on every copy either opens.
test_description='qemu-iotests 116: damaged QED headers'
. "$(dirname "$0")/lib.sh"

# The damage is the iotest's own (one header field set to all ones, the
# file cut to 512 bytes, the magic spoiled); t/9002 already covers the
# readers on in-range variants, so the variants here are there for the
# check: what qemu-img check and img-check say about each.

# same_check IMG: img-check and qemu-img check give the same report and
# exit status; -r all of both leaves the image as it was (QED repairs
# nothing in these copies) and reporting the same again.
same_check() {
	check_report "$1" qemu-img check >q.report &&
	check_report "$1" img-check >o.report &&
	test_cmp q.report o.report &&
	cp "$1" rq.qed && cp "$1" ro.qed &&
	{ qemu-img check -r all rq.qed >/dev/null 2>&1; true; } &&
	{ img-check -r all ro.qed >/dev/null 2>ro.err; test $? -lt 124; } &&
	no_sanitizer_report ro.err &&
	cmp rq.qed "$1" &&
	cmp ro.qed "$1"
}

# refused_by_both IMG [ARGS...]: qemu-io cannot open IMG (the iotest's
# read), qemu-img check exits 1; img-check and our readers refuse it
# with one line naming it, exit 1. ARGS (-f qed) go to both.
refused_by_both() {
	rb_img_=$1
	shift
	test_must_fail qemu-io "$@" -c "read 0 128M" "$rb_img_" >qio.out 2>&1 &&
	grep -F "can't open device" qio.out &&
	test_expect_code 1 qemu-img check "$@" "$rb_img_" 2>/dev/null &&
	open_fails img-check "$rb_img_" "$@" &&
	all_fail "$rb_img_" "$@"
}

# corrupt_for_us IMG CORRUPTIONS LEAKS QEMU: the deliberate difference.
# qemu-img check exits QEMU on IMG (1: it cannot open it), and its -r all
# leaves IMG as it was; img-check opens it for the check only, reports
# CORRUPTIONS and LEAKS (the clusters the misplaced table does not name;
# <absent> for none), exits 2 and, -r all, writes nothing: a header that
# misplaces the tables gives nothing to repair by.
corrupt_for_us() {
	cp "$1" rq.qed &&
	{ qemu-img check -r all rq.qed >/dev/null 2>&1; cq_=$?; true; } &&
	test $cq_ = "$4" &&
	cmp rq.qed "$1" &&
	test_expect_code 2 img-check --output=json "$1" >o.json 2>o.err &&
	no_sanitizer_report o.err &&
	test "$(json_get o.json corruptions leaks check-errors)" = \
		"$(printf 'corruptions=%s\nleaks=%s\ncheck-errors=0' "$2" "$3")" &&
	cp "$1" ro.qed &&
	test_expect_code 2 img-check -r all ro.qed >/dev/null 2>ro.err &&
	no_sanitizer_report ro.err &&
	grep -Fx "ERROR the header is damaged: nothing repaired" ro.err &&
	cmp ro.qed "$1"
}

# good.qed: 128 MiB as in the iotest, 64 KiB clusters, 4-cluster tables;
# L1 at 0x10000, one data cluster at 0x50000 (its L2 table after it).
test_expect_success 'setup' '
	qemu-img create -q -f qed good.qed 128M &&
	qio qed good.qed "write -P 0x11 0 64k" &&
	test $(img-poke good.qed 40 read le64) = $((0x10000)) &&
	test $(stat -c %s good.qed) = $((0xa0000)) &&
	same_check good.qed &&
	raw_same good.qed
'

# qemu-img check cannot open the cut file (its L1 table is gone); for us
# the header is intact and the check says what is wrong: a corruption.
test_expect_success '116: QED truncated header cluster' '
	cp good.qed trunc.qed &&
	truncate -s 512 trunc.qed &&
	test_must_fail qemu-io -f qed -c "read 0 128M" trunc.qed &&
	all_fail trunc.qed &&
	corrupt_for_us trunc.qed 1 "<absent>" 1 &&
	grep -Fx "ERROR L1 table at 0x10000: offset beyond end of file" o.err
'

test_expect_success '116: QED invalid header magic' '
	damage good.qed magic.qed 0 le32 0x58444551 &&
	test "$(head -c 4 magic.qed)" = QEDX &&
	refused_by_both magic.qed -f qed &&
	test_expect_code 63 qemu-img check magic.qed 2>/dev/null &&
	test_expect_code 63 img-check magic.qed 2>/dev/null
'

test_expect_success '116: QED invalid cluster size' '
	damage good.qed cs.qed 4 le32 0xffffffff &&
	refused_by_both cs.qed &&
	for v in 3000 2048 0x8000000 0; do
		damage good.qed csv.qed 4 le32 $v &&
		same_check csv.qed &&
		grep -Fx exit=1 o.report || return 1
	done
'

test_expect_success '116: QED invalid table size' '
	damage good.qed ts.qed 8 le32 0xffffffff &&
	refused_by_both ts.qed &&
	for v in 3 0 32; do
		damage good.qed tsv.qed 8 le32 $v &&
		same_check tsv.qed &&
		grep -Fx exit=1 o.report || return 1
	done
'

# A header size of 2 or 5 clusters puts the L1 table inside the header:
# qemu-img cannot open that, we report it. A header size of 0 QEMU opens,
# and counts the header cluster as a leak (which it never repairs); for
# us the header must be inside the header: a corruption, and -r all does
# not give the header "back". Both read that copy the same.
test_expect_success '116: QED invalid header size' '
	damage good.qed hs.qed 12 le32 0xffffffff &&
	refused_by_both hs.qed &&
	damage good.qed hsbig.qed 12 le32 0x10000 &&
	same_check hsbig.qed &&
	grep -Fx exit=1 o.report &&
	for v in 2 5; do
		damage good.qed hs$v.qed 12 le32 $v &&
		all_fail hs$v.qed &&
		corrupt_for_us hs$v.qed 1 "<absent>" 1 &&
		grep -Fx "ERROR L1 table at 0x10000: offset inside the header" o.err ||
		return 1
	done &&
	damage good.qed hs0.qed 12 le32 0 &&
	test "$(check_report hs0.qed qemu-img check)" = "$(printf "allocated-clusters=1,check-errors=0,format=qed,leaks=1,total-clusters=2048\nexit=3")" &&
	corrupt_for_us hs0.qed 1 "<absent>" 3 &&
	grep -Fx "ERROR header size of 0 clusters does not hold the header" o.err &&
	raw_same hs0.qed &&
	qemu-img compare -q good.qed hs0.qed
'

# The iotest sets every bit (misaligned and far past the end): refused by
# both. Misaligned, inside the header or just past the end of the file,
# qemu-img still cannot open it; our check reports it. Far past the end
# (more than a check reads as zeros) the check refuses too.
test_expect_success '116: QED invalid L1 table offset' '
	damage good.qed l1.qed 40 le64 0xffffffffffffffff &&
	refused_by_both l1.qed &&
	damage good.qed l1far.qed 40 le64 0x1000000000 &&
	same_check l1far.qed &&
	grep -Fx exit=1 o.report &&
	while read -r v why corruptions leaks; do
		damage good.qed l1v.qed 40 le64 $v &&
		all_fail l1v.qed &&
		corrupt_for_us l1v.qed $corruptions $leaks 1 &&
		grep -Fx "ERROR L1 table at $v: $(echo "$why" | tr _ " ")" o.err ||
		{ echo >&2 "L1 table offset $v"; return 1; }
	done <<-\EOF
	0x10200 offset_not_cluster_aligned 65 4
	0x0 offset_inside_the_header 4 1
	0x8000 offset_not_cluster_aligned 1 <absent>
	0xb0000 offset_beyond_end_of_file 1 9
	0x80000 table_runs_past_end_of_file 1 7
	EOF
'

# All ones is neither a multiple of 512 nor within reach of the tables;
# each on its own is refused by both as well. 0 QEMU accepts: so do we.
test_expect_success '116: QED invalid image size' '
	damage good.qed is.qed 48 le64 0xffffffffffffffff &&
	refused_by_both is.qed &&
	for v in 1000001 0x400000000000000 0xfffffffffffffe00; do
		damage good.qed isv.qed 48 le64 $v &&
		same_check isv.qed &&
		grep -Fx exit=1 o.report || return 1
	done &&
	damage good.qed is0.qed 48 le64 0 &&
	same_check is0.qed &&
	grep -Fx exit=0 o.report &&
	raw_same is0.qed &&
	test $(stat -c %s raw.ours) = 0
'

test_done
