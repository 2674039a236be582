#!/bin/sh
# 9321-iotests-qcow2-080.sh: qemu-iotests 080 (qcow2 input validation at open) re-created by script: where qemu-img refuses to open, every command of ours refuses with one line and without allocating what the header claims; where qemu-img reads, we read the same and check the same.
test_description='qemu-iotests 080: qcow2 header and table limits'
. "$(dirname "$0")/lib.sh"

# As in the iotest: a 64 MiB image with 64 KiB clusters (QEMU 7.2 lays
# it out with the header at 0, the refcount table at 0x10000, its block
# at 0x20000, the L1 table at 0x30000; a 512-byte write puts its L2 table
# at 0x40000; a snapshot's table entry then lands at 0x70000).
fresh() {
	rm -f "$1" &&
	qemu-img create -q -f qcow2 "$1" 64M
}

# ours CMD...: our commands under a memory limit (t/lib.sh).
ours() { memlimited "$@"; }
CHECK_REPORT_WRAP=memlimited

# refused IMG: qemu-img cannot open IMG (info, check and convert exit 1);
# img-info, img-map, img-check and img-convert refuse it with one line
# naming the file, exit 1.
refused() {
	test_expect_code 1 qemu-img info "$1" >/dev/null 2>q.err &&
	test_expect_code 1 qemu-img check "$1" >/dev/null 2>>q.err &&
	test_expect_code 1 qemu-img convert -O raw "$1" q.raw 2>>q.err &&
	cat q.err >&2 &&
	for c in img-info img-map img-check img-convert; do
		ours open_fails $c "$1" || return 1
	done
}

# same_read IMG: qemu-img convert and img-convert both read IMG, to the
# same bytes.
same_read() {
	rm -f q.raw o.raw &&
	qemu-img convert -O raw "$1" q.raw &&
	ours img-convert -O raw "$1" o.raw 2>o.err &&
	no_sanitizer_report o.err &&
	cmp q.raw o.raw
}

# same_repair IMG: -r all by each tool on a copy; qemu-img check then
# finds ours as it finds its own, or clean (where qemu-img leaves an
# entry naming data past the end of the file, ours clears it to read
# zeros as before: img-check(1)); both copies read as IMG read.
same_repair() {
	cp "$1" rq.img && cp "$1" ro.img &&
	{ qemu-img check -r all rq.img >/dev/null 2>&1; true; } &&
	{ ours img-check -r all ro.img >/dev/null 2>ro.err; test $? -lt 124; } &&
	no_sanitizer_report ro.err &&
	check_report rq.img qemu-img check >rq.report &&
	check_report ro.img qemu-img check >ro.report &&
	{ test_cmp rq.report ro.report || grep -x "exit=0" ro.report; } &&
	qemu-img compare -q "$1" rq.img &&
	qemu-img compare -q "$1" ro.img
}

test_expect_success '080: huge header size (0xffffffff)' '
	fresh t.qcow2 &&
	img-poke t.qcow2 100 be32 0xffffffff &&
	refused t.qcow2 &&
	grep "header exceeds cluster size" q.err
'

test_expect_success '080: huge header size (0x7fffffff)' '
	fresh t.qcow2 &&
	img-poke t.qcow2 100 be32 0x7fffffff &&
	refused t.qcow2 &&
	grep "header exceeds cluster size" q.err
'

# The iotest puts an extension of 0x7fffffff bytes right after the
# header (whose length QEMU 7.2 makes 112), then moves the backing file
# name offset: to the end of the address space, into the extension
# header, then away.
test_expect_success '080: huge unknown header extension, backing file offset past the end' '
	fresh t.qcow2 &&
	h=$(img-poke t.qcow2 100 read be32) &&
	img-poke t.qcow2 8 be64 0xffffffffffffffff &&
	img-poke t.qcow2 $h be32 0x12345678 &&
	img-poke t.qcow2 $((h + 4)) be32 0x7fffffff &&
	refused t.qcow2 &&
	grep "Invalid backing file offset" q.err
'

test_expect_success '080: huge unknown header extension, backing file name inside it' '
	fresh t.qcow2 &&
	h=$(img-poke t.qcow2 100 read be32) &&
	img-poke t.qcow2 8 be64 $((h + 4)) &&
	img-poke t.qcow2 $h be32 0x12345678 &&
	img-poke t.qcow2 $((h + 4)) be32 0x7fffffff &&
	refused t.qcow2 &&
	grep "Header extension too large" q.err
'

test_expect_success '080: huge unknown header extension, no backing file' '
	fresh t.qcow2 &&
	h=$(img-poke t.qcow2 100 read be32) &&
	img-poke t.qcow2 $h be32 0x12345678 &&
	img-poke t.qcow2 $((h + 4)) be32 0x7fffffff &&
	refused t.qcow2 &&
	grep "Header extension too large" q.err
'

test_expect_success '080: huge refcount table size (0xffffffff clusters)' '
	fresh t.qcow2 &&
	img-poke t.qcow2 56 be32 0xffffffff &&
	refused t.qcow2 &&
	grep "Reference count table too large" q.err
'

test_expect_success '080: huge refcount table size (0x20001 clusters)' '
	fresh t.qcow2 &&
	img-poke t.qcow2 56 be32 0x00020001 &&
	refused t.qcow2 &&
	grep "Reference count table too large" q.err
'

test_expect_success '080: refcount table offset not cluster aligned' '
	fresh t.qcow2 &&
	img-poke t.qcow2 48 be64 0x1234567890abcdef &&
	refused t.qcow2 &&
	grep "Reference count table offset invalid" q.err
'

test_expect_success '080: huge refcount table offset' '
	fresh t.qcow2 &&
	img-poke t.qcow2 48 be64 0xffffffffffff0000 &&
	img-poke t.qcow2 56 be32 0x7f &&
	refused t.qcow2 &&
	grep "Reference count table offset invalid" q.err
'

test_expect_success '080: too many snapshots (0xffffffff)' '
	fresh t.qcow2 &&
	img-poke t.qcow2 60 be32 0xffffffff &&
	refused t.qcow2 &&
	grep "Snapshot table too large" q.err
'

test_expect_success '080: too many snapshots (0x7fffffff)' '
	fresh t.qcow2 &&
	img-poke t.qcow2 60 be32 0x7fffffff &&
	refused t.qcow2 &&
	grep "Snapshot table too large" q.err
'

test_expect_success '080: huge snapshot table offset' '
	fresh t.qcow2 &&
	img-poke t.qcow2 64 be64 0xffffffffffff0000 &&
	img-poke t.qcow2 60 be32 0xffff &&
	refused t.qcow2 &&
	grep "Snapshot table offset invalid" q.err
'

test_expect_success '080: snapshot table offset not cluster aligned' '
	fresh t.qcow2 &&
	img-poke t.qcow2 64 be64 0x1234567890abcdef &&
	img-poke t.qcow2 60 be32 0 &&
	refused t.qcow2 &&
	grep "Snapshot table offset invalid" q.err
'

# 65536 snapshots in a table at 16 MiB, past the end of the file: QEMU
# opens it (the table reads as zeros there); creating one more fails.
# Ours opens it too, checks it as qemu-img does, reads the same.
# Deliberately, -r all does not rewrite the 65536 incomplete entries as
# qemu-img does (img-check(1): nothing is written, the damage reported;
# qemu-img's rewrite, 15 s, is not timed here).
test_expect_success '080: hitting the snapshot table size limit' '
	fresh t.qcow2 &&
	img-poke t.qcow2 64 be64 0x1000000 &&
	img-poke t.qcow2 60 be32 0x10000 &&
	test_must_fail qemu-img snapshot -c test t.qcow2 2>q.err &&
	grep "File too large" q.err &&
	qio qcow2 t.qcow2 "read -P 0 0 512" &&
	test $(qemu-img info --output=json t.qcow2 | grep -c "\"id\":") = 65536 &&
	ours img-info --output=json t.qcow2 >o.json &&
	test $(grep -c "\"id\":" o.json) = 65536 &&
	ours img-map t.qcow2 >/dev/null &&
	check_same_as_qemu t.qcow2 &&
	same_read t.qcow2 &&
	cp t.qcow2 ro.img &&
	test_expect_code 2 ours img-check -r all ro.img >/dev/null 2>ro.err &&
	grep -x "ERROR snapshot table entry 0 is incomplete: nothing repaired" ro.err &&
	cmp t.qcow2 ro.img
'

test_expect_success '080: active L1 table too large (0xffffffff entries)' '
	fresh t.qcow2 &&
	img-poke t.qcow2 36 be32 0xffffffff &&
	refused t.qcow2 &&
	grep "Active L1 table too large" q.err
'

test_expect_success '080: active L1 table too large (0x7fffffff entries)' '
	fresh t.qcow2 &&
	img-poke t.qcow2 36 be32 0x7fffffff &&
	refused t.qcow2 &&
	grep "Active L1 table too large" q.err
'

test_expect_success '080: huge L1 table offset' '
	fresh t.qcow2 &&
	img-poke t.qcow2 40 be64 0x7fffffffffff0000 &&
	img-poke t.qcow2 36 be32 0xffff &&
	refused t.qcow2 &&
	grep "Active L1 table offset invalid" q.err
'

test_expect_success '080: L1 table offset not cluster aligned' '
	fresh t.qcow2 &&
	img-poke t.qcow2 40 be64 0x1234567890abcdef &&
	img-poke t.qcow2 36 be32 1 &&
	refused t.qcow2 &&
	grep "Active L1 table offset invalid" q.err
'

test_expect_success '080: L1 table too small, with an internal snapshot' '
	fresh t.qcow2 &&
	qemu-img snapshot -c foo t.qcow2 &&
	img-poke t.qcow2 36 be32 0 &&
	refused t.qcow2 &&
	grep "L1 table is too small" q.err
'

test_expect_success '080: backing file name too long' '
	fresh t.qcow2 &&
	img-poke t.qcow2 8 be64 0x1000 &&
	img-poke t.qcow2 16 be32 0xffffffff &&
	refused t.qcow2 &&
	grep "Backing file name too long" q.err
'

# An L2 entry naming data at a huge host offset: QEMU opens the image
# (the check finds the damage) and refuses to snapshot it. Ours checks,
# reads and repairs it as qemu-img does.
test_expect_success '080: L2 entry with a huge offset and reserved bits (0xbfffffffffff0000)' '
	fresh t.qcow2 &&
	qio qcow2 t.qcow2 "write 0 512" &&
	test $(img-poke t.qcow2 $((0x40000)) read be64) = 9223372036855103488 &&
	img-poke t.qcow2 $((0x40000)) be64 0xbfffffffffff0000 &&
	test_must_fail qemu-img snapshot -c test t.qcow2 2>q.err &&
	grep "File too large" q.err &&
	cp t.qcow2 l2a.qcow2 &&
	check_same_as_qemu t.qcow2 &&
	same_read t.qcow2 &&
	same_repair t.qcow2
'

test_expect_success '080: L2 entry with a huge offset (0x800000ffffff0000)' '
	cp l2a.qcow2 t.qcow2 &&
	img-poke t.qcow2 $((0x40000)) be64 0x800000ffffff0000 &&
	test_must_fail qemu-img snapshot -c test t.qcow2 2>q.err &&
	grep "Resource temporarily unavailable" q.err &&
	check_same_as_qemu t.qcow2 &&
	same_read t.qcow2 &&
	same_repair t.qcow2
'

# A snapshot whose L1 table is misplaced or too large: QEMU opens the
# image but refuses to load the snapshot; the check reports the entry.
# Ours: the same check, the same reads of the active layer, the same
# -r all (the entry cannot be repaired by either).
test_expect_success '080: snapshot L1 table offset not cluster aligned' '
	fresh t.qcow2 &&
	qio qcow2 t.qcow2 "write 0 512" &&
	qemu-img snapshot -c test t.qcow2 &&
	test $(img-poke t.qcow2 64 read be64) = $((0x70000)) &&
	cp t.qcow2 snap.qcow2 &&
	img-poke t.qcow2 $((0x70000)) be64 0x400200 &&
	test_must_fail qemu-img convert -l snapshot.name=test -O raw t.qcow2 s.raw 2>q.err &&
	grep "Snapshot L1 table offset invalid" q.err &&
	check_same_as_qemu t.qcow2 &&
	grep "L1 table is not cluster aligned; snapshot table entry corrupted" rp.err &&
	same_read t.qcow2 &&
	same_repair t.qcow2
'

test_expect_success '080: snapshot L1 table too large' '
	cp snap.qcow2 t.qcow2 &&
	img-poke t.qcow2 $((0x70008)) be32 0x10000000 &&
	test_must_fail qemu-img convert -l snapshot.name=test -O raw t.qcow2 s.raw 2>q.err &&
	grep "Snapshot L1 table too large" q.err &&
	check_same_as_qemu t.qcow2 &&
	grep "L1 table is too large; snapshot table entry corrupted" rp.err &&
	same_read t.qcow2 &&
	same_repair t.qcow2
'

test_done
