#!/bin/sh
# 4020-check-qed.sh: img-check on QED images: counts and exit codes as qemu-img check's where it is right, repairs that leave clean images with the same data, crash safety of repairs.
test_description='img-check on QED images'
. "$(dirname "$0")/lib.sh"

# ours IMG / theirs IMG: exit code and the counts of img-check and of
# qemu-img check (JSON), as comparable lines in IMG.ours / IMG.theirs.
FIELDS='check-errors corruptions leaks total-clusters allocated-clusters fragmented-clusters compressed-clusters'
ours() {
	img-check --output=json "$1" >"$1.json" 2>"$1.err"
	echo "exit=$?" >"$1.ours"
	no_sanitizer_report "$1.err" &&
	json_get "$1.json" $FIELDS >>"$1.ours"
}
theirs() {
	qemu-img check --output=json "$1" >"$1.qjson" 2>/dev/null
	echo "exit=$?" >"$1.theirs"
	json_get "$1.qjson" $FIELDS >>"$1.theirs"
}
# like_qemu IMG: both agree.
like_qemu() {
	ours "$1" && theirs "$1" && test_cmp "$1.theirs" "$1.ours"
}
# has IMG FIELD=VALUE...: img-check's last counts say so.
has() {
	has_img_=$1
	shift
	for kv in "$@"; do
		grep -Fx "$kv" "$has_img_.ours" >/dev/null ||
		{ echo >&2 "$has_img_: want $kv:"; cat >&2 "$has_img_.ours"; return 1; }
	done
}
# clean IMG: img-check and qemu-img check both find nothing.
clean() {
	test_expect_code 0 img-check "$1" >/dev/null &&
	test_expect_code 0 qemu-img check "$1" >/dev/null
}
size_of() {
	stat -c %s "$1"
}

# a.qed: 64 KiB clusters, table size 4, 8 MiB: header 0, L1 at 0x10000,
# data 0x50000 (guest 0), L2 at 0x60000, data 0xa0000 and 0xb0000 (guest
# 4 MiB), guest 1 MiB a zero cluster; 0xc0000 bytes.
test_expect_success 'setup' '
	qemu-img create -q -f qed a.qed 8M &&
	qio qed a.qed "write -P 0x11 0 64k" "write -P 0x22 4M 128k" \
		"write -z 1M 64k" &&
	test $(img-poke a.qed $((0x10000)) read le64) = $((0x60000)) &&
	test $(img-poke a.qed $((0x60000)) read le64) = $((0x50000)) &&
	test $(img-poke a.qed $((0x60000 + 16 * 8)) read le64) = 1 &&
	test $(size_of a.qed) = $((0xc0000))
'

test_expect_success 'clean images, zero clusters, backing file: as qemu-img' '
	like_qemu a.qed &&
	has a.qed exit=0 allocated-clusters=3 fragmented-clusters=1 \
		total-clusters=128 &&
	qemu-img create -q -f qed empty.qed 1G &&
	like_qemu empty.qed &&
	qemu-img create -q -f raw base.raw 8M &&
	qemu-img create -q -f qed -b base.raw -F raw top.qed &&
	qio qed top.qed "write -P 0x33 64k 192k" &&
	like_qemu top.qed &&
	has top.qed exit=0 allocated-clusters=3
'

test_expect_success 'leaked clusters at the end (appended garbage): as qemu-img' '
	cp a.qed tail.qed &&
	head -c $((3 * 65536)) /dev/urandom >>tail.qed &&
	like_qemu tail.qed &&
	has tail.qed exit=3 leaks=3 &&
	grep -Fx "Leaked cluster 14 (offset 0xe0000)" tail.qed.err
'

test_expect_success 'a partial cluster at the end is a leak too (qemu-img ignores it)' '
	cp a.qed part.qed &&
	head -c 1000 /dev/urandom >>part.qed &&
	ours part.qed && has part.qed exit=3 leaks=1 &&
	theirs part.qed && grep -Fx exit=0 part.qed.theirs
'

test_expect_success 'an inner leak (L2 entry zeroed): as qemu-img' '
	damage a.qed inner.qed $((0x60000)) le64 0 &&
	like_qemu inner.qed &&
	has inner.qed exit=3 leaks=1 allocated-clusters=2 &&
	grep -Fx "Leaked cluster 5 (offset 0x50000)" inner.qed.err
'

test_expect_success '-r leaks: truncates trailing leaks, data unchanged' '
	cp tail.qed tail.before &&
	test_expect_code 0 img-check -r leaks tail.qed >out 2>err &&
	grep "3 leaked clusters" out &&
	clean tail.qed &&
	test $(size_of tail.qed) = $((0xc0000)) &&
	qemu-img compare -q tail.before tail.qed
'

test_expect_success '-r leaks: relocates the last cluster into the inner leak' '
	cp inner.qed inner.before &&
	test_expect_code 0 img-check -r leaks inner.qed >out 2>err &&
	grep -F "Relocated data cluster (1 cluster) from cluster 11 (offset 0xb0000) to cluster 5 (offset 0x50000)" err &&
	clean inner.qed &&
	test $(size_of inner.qed) = $((0xb0000)) &&
	qemu-img compare -q inner.before inner.qed &&
	test $(img-poke inner.qed $((0x60000 + 65 * 8)) read le64) = $((0x50000))
'

test_expect_success '-r leaks: an L2 table moves into a run of leaked clusters' '
	qemu-img create -q -f qed mv.qed 8M &&
	qio qed mv.qed "write -P 0x44 0 320k" "write -P 0x55 4M 64k" &&
	test $(img-poke mv.qed $((0x10000)) read le64) = $((0xa0000)) &&
	for i in 0 1 2 3 4; do
		img-poke mv.qed $((0xa0000 + i * 8)) le64 0 || return 1
	done &&
	cp mv.qed mv.before &&
	ours mv.qed && has mv.qed exit=3 leaks=5 &&
	test_expect_code 0 img-check -r leaks mv.qed >out 2>err &&
	grep -F "Relocated L2 table (4 clusters) from cluster 10 (offset 0xa0000) to cluster 6 (offset 0x60000)" err &&
	clean mv.qed &&
	test $(size_of mv.qed) = $((0xa0000)) &&
	qemu-img compare -q mv.before mv.qed
'

test_expect_success '-r leaks: no room to move the L2 table: holes, leaks remain' '
	qemu-img create -q -f qed mv2.qed 8M &&
	qio qed mv2.qed "write -P 0x44 0 256k" "write -P 0x55 4M 64k" &&
	for i in 0 1 2 3; do
		img-poke mv2.qed $((0x90000 + i * 8)) le64 0 || return 1
	done &&
	cp mv2.qed mv2.before &&
	test_expect_code 3 img-check -r leaks mv2.qed >out 2>err &&
	grep -F "Punched a hole over 3 leaked clusters at offset 0x60000" err &&
	like_qemu mv2.qed && has mv2.qed exit=3 leaks=3 &&
	qemu-img compare -q mv2.before mv2.qed
'

test_expect_success 'L2 table past the end of the file: as qemu-img; -r all clears it' '
	damage a.qed l2eof.qed $((0x10000)) le64 $((0x1000000)) &&
	like_qemu l2eof.qed &&
	has l2eof.qed exit=2 corruptions=1 leaks=7 &&
	grep -F "ERROR L2 table at 0x1000000 for guest offset 0x0: offset beyond end of file" l2eof.qed.err &&
	test_expect_code 0 img-check -r all l2eof.qed >out 2>err &&
	grep -F "guest range 0x0..0x7fffff lost its data" err &&
	clean l2eof.qed &&
	test $(size_of l2eof.qed) = $((0x50000)) &&
	qio qed l2eof.qed "read -P 0 0 8M"
'

test_expect_success 'misaligned L2 entry: as qemu-img; -r all clears it' '
	damage a.qed mis.qed $((0x60000)) le64 $((0x50100)) &&
	like_qemu mis.qed &&
	has mis.qed exit=2 corruptions=1 leaks=1 &&
	test_expect_code 0 img-check -r all mis.qed >out 2>err &&
	grep -F "guest range 0x0..0xffff lost its data" err &&
	clean mis.qed &&
	qio qed mis.qed "read -P 0 0 64k" "read -P 0x22 4M 128k" "read -P 0 1M 64k"
'

test_expect_success 'misaligned L2 table: as qemu-img' '
	damage a.qed mist.qed $((0x10000)) le64 $((0x60800)) &&
	like_qemu mist.qed &&
	has mist.qed exit=2 corruptions=1
'

test_expect_success 'two L2 entries sharing a cluster: as qemu-img, never repaired' '
	damage a.qed shared.qed $((0x60000 + 8)) le64 $((0x50000)) &&
	like_qemu shared.qed &&
	has shared.qed exit=2 corruptions=1 allocated-clusters=4 &&
	cp shared.qed shared.before &&
	test_expect_code 2 img-check -r all shared.qed >out 2>err &&
	cmp shared.before shared.qed
'

test_expect_success 'truncated files: as qemu-img but for the partial cluster' '
	head -c $((0xb0000)) a.qed >trunc.qed &&
	like_qemu trunc.qed &&
	has trunc.qed exit=2 corruptions=1 &&
	head -c $((0xa8000)) a.qed >trunc2.qed &&
	ours trunc2.qed && theirs trunc2.qed &&
	has trunc2.qed exit=2 corruptions=2 leaks=1 &&
	grep -Fx corruptions=2 trunc2.qed.theirs &&
	grep -Fx leaks=\<absent\> trunc2.qed.theirs &&
	test_expect_code 0 img-check -r all trunc2.qed >out 2>err &&
	clean trunc2.qed &&
	test $(size_of trunc2.qed) = $((0xa0000)) &&
	qio qed trunc2.qed "read -P 0x11 0 64k" "read -P 0 4M 128k" &&
	head -c $((0x68000)) a.qed >trunc3.qed &&
	ours trunc3.qed && has trunc3.qed exit=2 corruptions=1 leaks=2 &&
	test_expect_code 0 img-check -r all trunc3.qed >out 2>err &&
	clean trunc3.qed
'

test_expect_success 'need-check set by a crash: reported, cleared by -r' '
	qemu-img create -q -f qed nc.qed 8M &&
	qio_crash qed nc.qed "write -P 0x66 0 64k" &&
	test $(img-poke nc.qed 16 read le64) = 2 &&
	like_qemu nc.qed &&
	cp nc.qed nc.before &&
	test_expect_code 0 img-check nc.qed &&
	test $(img-poke nc.qed 16 read le64) = 2 &&
	test_expect_code 0 img-check -r leaks nc.qed >out 2>err &&
	grep -F "Cleared the need-check flag" err &&
	test $(img-poke nc.qed 16 read le64) = 0 &&
	clean nc.qed &&
	qemu-img compare -q nc.before nc.qed
'

test_expect_success 'need-check stays while a corruption remains' '
	damage a.qed ncs.qed 16 le64 2 $((0x60000 + 8)) le64 $((0x50000)) &&
	test_expect_code 2 img-check -r all ncs.qed >out 2>err &&
	test $(img-poke ncs.qed 16 read le64) = 2
'

test_expect_success 'files beyond cs*(cs-1) bytes: no spurious leaks (qemu-img has some)' '
	qemu-img create -q -f qed -o cluster_size=4096 big.qed 32M &&
	qio qed big.qed "write -P 0x77 0 20M" &&
	test $(size_of big.qed) -gt $((4096 * 4095)) &&
	ours big.qed && has big.qed exit=0 allocated-clusters=5120 &&
	theirs big.qed &&
	echo >&2 "note: qemu-img check on a $(size_of big.qed)-byte 4 KiB-cluster QED: $(tr "\n" " " <big.qed.theirs)"
'

# need_check_cleared IMG: qemu-img check finds IMG clean, and its
# need-check flag is off.
need_check_cleared() {
	qemu-img check -q "$1" &&
	test "$(img-poke "$1" 16 read le64)" = 0
}
# fl2_reads IMG: the parts of fl2.qed that read before its repair still do.
fl2_reads() {
	qio qed "$1" "read -P 0x11 0 64k" "read -P 0x22 4M 64k"
}

test_expect_success 'crash safety: -r leaks relocating and truncating' '
	damage a.qed fl1.qed $((0x60000)) le64 0 &&
	head -c $((2 * 65536)) /dev/zero >>fl1.qed &&
	cp fl1.qed fl1.qed.ref &&
	repair_survives_kills --verdict "qemu-img check -q" fl1.qed fl1.qed.ref leaks
'

test_expect_success 'crash safety: -r all on a misaligned entry and need-check' '
	damage a.qed fl2.qed 16 le64 2 $((0x60000 + 65 * 8)) le64 $((0xb0008)) &&
	cp fl2.qed fl2.tmp && img-check -q -r all fl2.tmp &&
	cp fl2.tmp fl2.qed.ref &&
	repair_survives_kills --verdict need_check_cleared --reads fl2_reads \
		fl2.qed fl2.qed.ref all
'

test_done
