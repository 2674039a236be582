#!/bin/sh
# 4010-check-qcow2.sh: img-check on qcow2 agrees with qemu-img check (exit code, counts), and its repairs are clean, keep the data and survive being killed at any write.
test_description='img-check for qcow2'
. "$(dirname "$0")/lib.sh"

# same_check IMG: img-check and qemu-img check give the same exit code and
# the same JSON (whitespace aside).
same_check() {
	qemu-img check --output=json "$1" >q.json 2>q.err
	same_qcode_=$?
	img-check --output=json "$1" >o.json 2>o.err
	same_ocode_=$?
	cat o.err
	if test "$same_qcode_" != "$same_ocode_"; then
		echo >&2 "exit $same_ocode_, qemu-img check exits $same_qcode_ for $1"
		cat >&2 q.err
		return 1
	fi
	tr -d ' \n' <q.json >q.flat &&
	tr -d ' \n' <o.json >o.flat &&
	test_cmp q.flat o.flat &&
	no_sanitizer_report o.err
}

# damage SRC DST OFFSET TYPE VALUE: DST is SRC with one field changed.
damage() {
	cp "$1" "$2" &&
	img-poke "$2" "$3" "$4" "$5"
}

# repaired IMG MODE: img-check -r MODE on a copy, fixed.qcow2; then
# qemu-img check finds it clean and its data equal to IMG's.
repaired() {
	cp "$1" fixed.qcow2 &&
	img-check -r "$2" fixed.qcow2 >r.out 2>r.err
	repaired_code_=$?
	cat r.out r.err
	test "$repaired_code_" = 0 &&
	no_sanitizer_report r.err &&
	qemu-img check fixed.qcow2 &&
	qemu-img compare -q "$1" fixed.qcow2
}

# killed_repair IMG MODE: img-check -r MODE on IMG survives being killed at
# any write, judged by qemu-img check too.
killed_repair() {
	repair_survives_kills --verdict "qemu-img check -q" "$1" "$1" "$2"
}

# good.qcow2: 64 KiB clusters: header, reftable 0x10000, refblock 0x20000,
# L1 0x30000, L2 0x40000, data clusters 5, 6 (guest 0..128k), 7 (guest 1M).
test_expect_success 'setup' '
	qemu-img create -q -f qcow2 good.qcow2 8M &&
	qio qcow2 good.qcow2 "write -P 0x11 0 128k" "write -P 0x12 1M 64k" &&
	test $(img-poke good.qcow2 $((0x30000 + 4)) read be32) = $((0x40000)) &&
	test $(img-poke good.qcow2 $((0x40000 + 4)) read be32) = $((0x50000)) &&
	test $(img-poke good.qcow2 $((0x40000 + 16 * 8 + 4)) read be32) = $((0x70000))
'

test_expect_success 'clean images agree with qemu-img check' '
	same_check good.qcow2 &&
	qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 8M &&
	qio qcow2 v2.qcow2 "write -P 0x13 0 64k" "write -P 0x14 3M 200k" &&
	same_check v2.qcow2 &&
	qemu-img create -q -f qcow2 -o cluster_size=4k small.qcow2 16M &&
	qio qcow2 small.qcow2 "write -P 1 0 1M" "write -P 2 4M 12k" "write -P 3 2M 8k" &&
	same_check small.qcow2 &&
	qemu-img create -q -f qcow2 -o refcount_bits=1 rc1.qcow2 8M &&
	qio qcow2 rc1.qcow2 "write -P 5 0 256k" &&
	same_check rc1.qcow2 &&
	qemu-img create -q -f qcow2 -o refcount_bits=64 rc64.qcow2 8M &&
	qio qcow2 rc64.qcow2 "write -P 5 0 256k" &&
	same_check rc64.qcow2 &&
	qemu-img create -q -f qcow2 empty.qcow2 1G &&
	same_check empty.qcow2
'

test_expect_success 'snapshots, bitmaps, compressed, extended L2, data file' '
	cp good.qcow2 snap.qcow2 &&
	qemu-img snapshot -c one snap.qcow2 &&
	qio qcow2 snap.qcow2 "write -P 0x21 64k 64k" "write -P 0x22 2M 64k" &&
	qemu-img snapshot -c two snap.qcow2 &&
	qio qcow2 snap.qcow2 "write -P 0x23 0 64k" &&
	same_check snap.qcow2 &&
	cp good.qcow2 bitmap.qcow2 &&
	qemu-img bitmap --add bitmap.qcow2 b0 &&
	qemu-img bitmap --add -g 128k bitmap.qcow2 b1 &&
	qio qcow2 bitmap.qcow2 "write -P 0x31 3M 64k" &&
	same_check bitmap.qcow2 &&
	qemu-img convert -c -O qcow2 good.qcow2 comp.qcow2 &&
	same_check comp.qcow2 &&
	qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=64k ext.qcow2 8M &&
	qio qcow2 ext.qcow2 "write -P 0x41 0 4k" "write -P 0x42 100k 8k" "write -z 1M 64k" &&
	same_check ext.qcow2 &&
	qemu-img create -q -f qcow2 -o data_file=df.raw df.qcow2 8M &&
	qio qcow2 df.qcow2 "write -P 0x51 0 64k" "write -P 0x52 2M 64k" &&
	same_check df.qcow2 &&
	for f in snap bitmap comp ext df; do
		repaired $f.qcow2 all || return 1
	done
'

test_expect_success 'leaked cluster: refcount of a spare cluster' '
	cp good.qcow2 leak.qcow2 &&
	truncate -s $((0x90000)) leak.qcow2 &&
	img-poke leak.qcow2 $((0x20000 + 2 * 8)) be16 1 &&
	same_check leak.qcow2 &&
	grep "^Leaked cluster 8 refcount=1 reference=0" o.err &&
	repaired leak.qcow2 leaks &&
	grep "leaked clusters" r.out &&
	test $(stat -c %s fixed.qcow2) = $((0x80000)) &&
	repaired leak.qcow2 all
'

test_expect_success 'lost reference: L2 entry cleared' '
	damage good.qcow2 lost.qcow2 $((0x40000 + 8)) be64 0 &&
	same_check lost.qcow2 &&
	grep "^Leaked cluster 6 refcount=1 reference=0" o.err &&
	repaired lost.qcow2 leaks &&
	repaired lost.qcow2 all
'

test_expect_success 'refcount raised: leak and OFLAG_COPIED' '
	damage good.qcow2 raised.qcow2 $((0x20000 + 2 * 5)) be16 2 &&
	same_check raised.qcow2 &&
	repaired raised.qcow2 leaks &&
	repaired raised.qcow2 all
'

test_expect_success 'refcount 0 on a used cluster: -r leaks fails, -r all rebuilds' '
	damage good.qcow2 zero.qcow2 $((0x20000 + 2 * 6)) be16 0 &&
	same_check zero.qcow2 &&
	grep "^ERROR cluster 6 refcount=0 reference=1" o.err &&
	cp zero.qcow2 zero-leaks.qcow2 &&
	test_expect_code 1 img-check -r leaks zero-leaks.qcow2 &&
	test_expect_code 1 qemu-img check -r leaks zero-leaks.qcow2 &&
	cmp zero.qcow2 zero-leaks.qcow2 &&
	repaired zero.qcow2 all &&
	grep "Rebuilding refcount structure" r.err
'

test_expect_success 'refcount too low: raised by -r all' '
	cp good.qcow2 low.qcow2 &&
	qemu-img snapshot -c s low.qcow2 &&
	test $(img-poke low.qcow2 $((0x20000 + 2 * 5)) read be16) = 2 &&
	img-poke low.qcow2 $((0x20000 + 2 * 5)) be16 1 &&
	same_check low.qcow2 &&
	grep "^ERROR cluster 5 refcount=1 reference=2" o.err &&
	repaired low.qcow2 all
'

test_expect_success 'two L2 entries share a cluster' '
	damage good.qcow2 shared.qcow2 $((0x40000 + 8)) be64 0x8000000000050000 &&
	same_check shared.qcow2 &&
	grep "^ERROR cluster 5 refcount=1 reference=2" o.err &&
	repaired shared.qcow2 all &&
	qemu-img check --output=json fixed.qcow2 >q.json &&
	! grep -q leaks q.json
'

test_expect_success 'misaligned L2 entry and L1 entry with reserved bits' '
	damage good.qcow2 misal.qcow2 $((0x40000 + 16 * 8)) be64 0x8000000000070200 &&
	same_check misal.qcow2 &&
	grep "Data cluster is not properly aligned" o.err &&
	damage good.qcow2 l1res.qcow2 $((0x30000)) be64 0x8000000000040001 &&
	same_check l1res.qcow2 &&
	damage good.qcow2 l2res.qcow2 $((0x40000)) be64 0x8000000000050002 &&
	same_check l2res.qcow2
'

test_expect_success 'tables and data past the end of the file' '
	damage good.qcow2 l2eof.qcow2 $((0x30000)) be64 0x8000000010000000 &&
	same_check l2eof.qcow2 &&
	grep "exceeding the end of the file" o.err &&
	repaired l2eof.qcow2 all &&
	damage good.qcow2 deof.qcow2 $((0x40000 + 8)) be64 0x8000000010000000 &&
	same_check deof.qcow2 &&
	repaired deof.qcow2 all &&
	grep "guest range 0x10000..0x1ffff reads as zeros, as before" r.err
'

test_expect_success 'compressed cluster past the end of the file, and with COPIED' '
	l1=$(img-poke comp.qcow2 40 read be64) &&
	l2=$(img-poke comp.qcow2 $((l1 + 4)) read be32) &&
	damage comp.qcow2 ceof.qcow2 $l2 be64 0x4000000010000000 &&
	same_check ceof.qcow2 &&
	grep "exceeding the end of the file" o.err &&
	cp ceof.qcow2 fixed.qcow2 &&
	img-check -r all fixed.qcow2 &&
	qemu-img check fixed.qcow2 &&
	hi=$(img-poke comp.qcow2 $l2 read be32) &&
	damage comp.qcow2 ccopied.qcow2 $l2 be32 $((hi | 0x80000000)) &&
	same_check ccopied.qcow2 &&
	grep "copied flag must never be set for compressed clusters" o.err
'

test_expect_success 'truncated file' '
	cp good.qcow2 trunc.qcow2 &&
	truncate -s $((0x70000)) trunc.qcow2 &&
	same_check trunc.qcow2 &&
	repaired trunc.qcow2 all
'

test_expect_success 'dirty and corrupt bits' '
	damage good.qcow2 dirty.qcow2 72 be64 1 &&
	same_check dirty.qcow2 &&
	damage good.qcow2 corrupt.qcow2 72 be64 2 &&
	same_check corrupt.qcow2 &&
	repaired dirty.qcow2 leaks &&
	test $(img-poke fixed.qcow2 72 read be64) = 0 &&
	repaired corrupt.qcow2 all &&
	test $(img-poke fixed.qcow2 72 read be64) = 0
'

test_expect_success 'crash with lazy refcounts (qemu-io abort)' '
	qemu-img create -q -f qcow2 -o lazy_refcounts=on lazy.qcow2 8M &&
	qio qcow2 lazy.qcow2 "write -P 0x61 0 64k" &&
	qio_crash qcow2 lazy.qcow2 "write -P 0x62 1M 192k" "write -P 0x63 4M 64k" &&
	same_check lazy.qcow2 &&
	repaired lazy.qcow2 all
'

test_expect_success 'snapshot table entries with a misaligned L1 table' '
	so=$(img-poke snap.qcow2 64 read be64) &&
	damage snap.qcow2 snap-l1a.qcow2 $so be64 $((0xd0200)) &&
	same_check snap-l1a.qcow2 &&
	grep "ERROR snapshot 1 (one) l1_offset=0xd0200" o.err &&
	cp snap-l1a.qcow2 a.qcow2 &&
	cp snap-l1a.qcow2 b.qcow2 &&
	test_expect_code 2 qemu-img check -r leaks a.qcow2 &&
	test_expect_code 2 img-check -r leaks b.qcow2 &&
	qemu-img compare -q snap-l1a.qcow2 b.qcow2 &&
	same_check b.qcow2
'

# For each kind of image: its first L1 entry cleared (references lost),
# and its first refcount table entry cleared (refcount 0 everywhere).
test_expect_success 'lost L2 table and lost refcount block, every kind of image' '
	for f in v2 small rc1 rc64 snap bitmap comp ext df; do
		l1=$(img-poke $f.qcow2 40 read be64) &&
		rt=$(img-poke $f.qcow2 48 read be64) &&
		damage $f.qcow2 $f-l1.qcow2 $l1 be64 0 &&
		same_check $f-l1.qcow2 &&
		repaired $f-l1.qcow2 leaks &&
		repaired $f-l1.qcow2 all &&
		damage $f.qcow2 $f-rt.qcow2 $rt be64 0 &&
		same_check $f-rt.qcow2 &&
		test_expect_code 1 img-check -r leaks $f-rt.qcow2 &&
		repaired $f-rt.qcow2 all || return 1
	done
'

test_expect_success 'killed at every write of a repair' '
	killed_repair snap-rt.qcow2 all &&
	killed_repair bitmap-rt.qcow2 all &&
	killed_repair rc1-rt.qcow2 all &&
	killed_repair snap-l1.qcow2 leaks &&
	killed_repair lost.qcow2 leaks &&
	killed_repair lost.qcow2 all &&
	killed_repair leak.qcow2 leaks &&
	killed_repair zero.qcow2 all &&
	killed_repair lazy.qcow2 all &&
	killed_repair shared.qcow2 all &&
	damage good.qcow2 k2.qcow2 $((0x30000)) be64 0x8000000010000000 &&
	killed_repair k2.qcow2 all &&
	damage good.qcow2 k3.qcow2 72 be64 3 &&
	img-poke k3.qcow2 $((0x20000 + 2 * 5)) be16 3 &&
	killed_repair k3.qcow2 all
'

test_done
