#!/bin/sh
# 4030-check-qcow.sh: img-check on qcow (v1) images, which qemu-img cannot check: counts, exit codes, repairs that keep the data, crash safety of repairs.
test_description='img-check on qcow images'
. "$(dirname "$0")/lib.sh"

FIELDS='check-errors corruptions leaks total-clusters allocated-clusters fragmented-clusters compressed-clusters'
# ours IMG: img-check's exit code and counts, as lines in IMG.ours.
ours() {
	img-check --output=json "$1" >"$1.json" 2>"$1.err"
	echo "exit=$?" >"$1.ours"
	no_sanitizer_report "$1.err" &&
	json_get "$1.json" $FIELDS >>"$1.ours"
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
clean() {
	test_expect_code 0 img-check "$1" >/dev/null
}
size_of() {
	stat -c %s "$1"
}
be64() {
	img-poke "$1" "$2" read be64
}

# a.qcow: 4 KiB clusters, 512-entry L2 tables, 8 MiB: header and L1 in
# 0..0x1000 (4 L1 entries at 48), L2 for guest 0 at 0x1000, data 0x2000..
# 0x11000 (guest 0, 64 KiB), L2 for guest 4 MiB at 0x12000, data 0x13000..
# 0x32000 (128 KiB); 0x33000 bytes.
test_expect_success 'setup' '
	qemu-img create -q -f qcow a.qcow 8M &&
	qio qcow a.qcow "write -P 0x11 0 64k" "write -P 0x22 4M 128k" &&
	test $(be64 a.qcow 48) = $((0x1000)) &&
	test $(be64 a.qcow $((0x1000))) = $((0x2000)) &&
	test $(be64 a.qcow 64) = $((0x12000)) &&
	test $(be64 a.qcow $((0x12000))) = $((0x13000)) &&
	test $(size_of a.qcow) = $((0x33000))
'

test_expect_success 'clean images: plain, empty, backing file, compressed' '
	ours a.qcow &&
	has a.qcow exit=0 allocated-clusters=48 total-clusters=2048 \
		fragmented-clusters=\<absent\> leaks=\<absent\> &&
	qemu-img create -q -f qcow empty.qcow 1G &&
	ours empty.qcow && has empty.qcow exit=0 total-clusters=262144 &&
	qemu-img create -q -f raw base.raw 8M &&
	qio raw base.raw "write -P 0x44 0 3M" "write -P 0x45 6M 512k" &&
	qemu-img create -q -f qcow -b base.raw -F raw top.qcow &&
	qio qcow top.qcow "write -P 0x55 1M 100k" &&
	ours top.qcow && has top.qcow exit=0 allocated-clusters=200 &&
	# qemu-img 7.2 exits 1 here without a word, the image written whole.
	{ qemu-img convert -c -O qcow base.raw z.qcow || true; } &&
	qemu-img compare -q base.raw z.qcow &&
	ours z.qcow &&
	has z.qcow exit=0 compressed-clusters=896 allocated-clusters=896 \
		fragmented-clusters=896
'

test_expect_success 'leaked clusters at the end (appended garbage)' '
	cp a.qcow tail.qcow &&
	head -c $((3 * 4096 + 100)) /dev/urandom >>tail.qcow &&
	ours tail.qcow && has tail.qcow exit=3 leaks=4 &&
	grep -Fx "Leaked cluster 54 (offset 0x36000)" tail.qcow.err &&
	cp tail.qcow tail.before &&
	test_expect_code 0 img-check -r leaks tail.qcow >out 2>err &&
	grep "4 leaked clusters" out &&
	clean tail.qcow &&
	test $(size_of tail.qcow) = $((0x33000)) &&
	qemu-img compare -q tail.before tail.qcow
'

test_expect_success 'an inner leak: -r leaks relocates the last cluster' '
	damage a.qcow inner.qcow $((0x1000)) be64 0 &&
	ours inner.qcow && has inner.qcow exit=3 leaks=1 allocated-clusters=47 &&
	cp inner.qcow inner.before &&
	test_expect_code 0 img-check -r leaks inner.qcow >out 2>err &&
	grep -F "Relocated data cluster (1 cluster) from cluster 50 (offset 0x32000) to cluster 2 (offset 0x2000)" err &&
	clean inner.qcow &&
	test $(size_of inner.qcow) = $((0x32000)) &&
	qemu-img compare -q inner.before inner.qcow
'

test_expect_success 'an unreferenced L2 table and its data: data and a table move down' '
	qemu-img create -q -f qcow b.qcow 8M &&
	qio qcow b.qcow "write -P 0x11 0 64k" "write -P 0x22 4M 8k" &&
	test $(be64 b.qcow 64) = $((0x12000)) &&
	damage b.qcow l1gone.qcow 48 be64 0 &&
	ours l1gone.qcow && has l1gone.qcow exit=3 leaks=17 &&
	cp l1gone.qcow l1gone.before &&
	test_expect_code 0 img-check -r leaks l1gone.qcow >out 2>err &&
	grep -F "Relocated L2 table (1 cluster) from cluster 18 (offset 0x12000) to cluster 1 (offset 0x1000)" err &&
	grep -F "Relocated data clusters (2 clusters) from cluster 19 (offset 0x13000) to cluster 2 (offset 0x2000)" err &&
	clean l1gone.qcow &&
	test $(size_of l1gone.qcow) = $((0x4000)) &&
	qemu-img compare -q l1gone.before l1gone.qcow
'

test_expect_success 'a leak in a compressed image: holes, then clean' '
	l2=$(be64 z.qcow 48) &&
	damage z.qcow zl.qcow $((l2 + 8 * 100)) be64 0 &&
	ours zl.qcow && has zl.qcow allocated-clusters=895 &&
	cp zl.qcow zl.before &&
	test_expect_code 0 img-check -r leaks zl.qcow >out 2>err &&
	clean zl.qcow &&
	qemu-img compare -q zl.before zl.qcow
'

test_expect_success 'L2 table past the end of the file; -r all clears it' '
	damage a.qcow l2eof.qcow 64 be64 $((0x1000000)) &&
	ours l2eof.qcow && has l2eof.qcow exit=2 corruptions=1 leaks=33 &&
	grep -F "ERROR L2 table at 0x1000000 for guest offset 0x400000: offset beyond end of file" l2eof.qcow.err &&
	test_expect_code 0 img-check -r all l2eof.qcow >out 2>err &&
	grep -F "guest range 0x400000..0x5fffff lost its data" err &&
	clean l2eof.qcow &&
	test $(size_of l2eof.qcow) = $((0x12000)) &&
	qio qcow l2eof.qcow "read -P 0x11 0 64k" "read -P 0 4M 128k"
'

test_expect_success 'misaligned data entry; -r all clears it' '
	damage a.qcow mis.qcow $((0x1000 + 8)) be64 $((0x3001)) &&
	ours mis.qcow && has mis.qcow exit=2 corruptions=1 leaks=1 &&
	test_expect_code 0 img-check -r all mis.qcow >out 2>err &&
	grep -F "guest range 0x1000..0x1fff lost its data" err &&
	clean mis.qcow &&
	qio qcow mis.qcow "read -P 0x11 0 4k" "read -P 0 4k 4k" \
		"read -P 0x11 8k 56k" "read -P 0x22 4M 128k"
'

test_expect_success 'compressed data out of range; -r all clears it' '
	l2=$(be64 z.qcow 48) &&
	# The low 32 bits of the entry hold the stream offset (bits 0..50).
	damage z.qcow zr.qcow $((l2 + 8 * 5 + 4)) be32 0x7000000 &&
	ours zr.qcow && has zr.qcow exit=2 corruptions=1 &&
	grep -F "ERROR compressed data at 0x7000000 for guest offset 0x5000: offset beyond end of file" zr.qcow.err &&
	test_expect_code 0 img-check -r all zr.qcow >out 2>err &&
	clean zr.qcow &&
	qio qcow zr.qcow "read -P 0x44 0 20k" "read -P 0 20k 4k" "read -P 0x44 24k 1M"
'

test_expect_success 'two L2 entries sharing a cluster: never repaired' '
	damage a.qcow shared.qcow $((0x1000 + 8)) be64 $((0x2000)) &&
	ours shared.qcow &&
	has shared.qcow exit=2 corruptions=1 leaks=1 allocated-clusters=48 &&
	cp shared.qcow shared.before &&
	test_expect_code 2 img-check -r all shared.qcow >out 2>err &&
	qemu-img compare -q shared.before shared.qcow
'

test_expect_success 'truncated files' '
	head -c $((0x30000)) a.qcow >trunc.qcow &&
	ours trunc.qcow && has trunc.qcow exit=2 corruptions=3 &&
	test_expect_code 0 img-check -r all trunc.qcow >out 2>err &&
	clean trunc.qcow &&
	qio qcow trunc.qcow "read -P 0x11 0 64k" "read -P 0x22 4M 116k" \
		"read -P 0 $((4194304 + 118784)) 12k" &&
	head -c 1000 empty.qcow >l1trunc.qcow &&
	ours l1trunc.qcow && has l1trunc.qcow exit=2 corruptions=1 &&
	grep -F "ERROR L1 table at 0x30 (4096 bytes): runs past end of file" l1trunc.qcow.err &&
	test_expect_code 2 img-check -r all l1trunc.qcow >out 2>err
'

test_expect_success 'last data cluster cut short: an error, no leak; -r leaks keeps what is there, -r all extends the file' '
	head -c $((0x32000 + 2048)) a.qcow >short.qcow &&
	ours short.qcow &&
	has short.qcow exit=2 corruptions=1 leaks=\<absent\> &&
	grep -F "ERROR data cluster at 0x32000 for guest offset 0x41f000: cut short by the end of the file" short.qcow.err &&
	! grep Leaked short.qcow.err &&
	test_expect_code 2 img-check -r leaks short.qcow >out 2>err &&
	test $(size_of short.qcow) = $((0x32000 + 2048)) &&
	qio qcow short.qcow "read -P 0x22 $((0x41f000)) 2k" \
		"read -P 0 $((0x41f000 + 2048)) 2k" &&
	test_expect_code 0 img-check -r all short.qcow >out 2>err &&
	grep -F "cut short by the end of the file; the file is extended to cover it" err &&
	test $(size_of short.qcow) = $((0x33000)) &&
	qio qcow short.qcow "read -P 0x22 $((0x41f000)) 2k" \
		"read -P 0 $((0x41f000 + 2048)) 2k" &&
	clean short.qcow
'

test_expect_success 'an uninterpretable header fails the check (exit 1)' '
	damage a.qcow badcs.qcow 32 u8 20 &&
	test_expect_code 1 img-check badcs.qcow >out 2>err &&
	grep -F "badcs.qcow" err
'

# fl2_reads IMG: the parts of fl2.qcow that read before its repair still do.
fl2_reads() {
	qio qcow "$1" "read -P 0x11 0 4k"
}

test_expect_success 'crash safety: -r leaks moving data and a table' '
	repair_survives_kills l1gone.before l1gone.before leaks
'

test_expect_success 'crash safety: -r all clearing entries, then moving' '
	damage a.qcow fl2.qcow $((0x1000 + 8)) be64 $((0x3001)) \
		$((0x1000 + 16)) be64 0 &&
	cp fl2.qcow fl2.ref && img-check -q -r all fl2.ref &&
	repair_survives_kills --reads fl2_reads fl2.qcow fl2.ref all &&
	qio qcow kill.img "read -P 0 4k 8k" "read -P 0x22 4M 128k"
'

test_done
