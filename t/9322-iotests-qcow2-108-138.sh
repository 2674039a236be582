#!/bin/sh
# 9322-iotests-qcow2-108-138.sh: qemu-iotests 108 (refcount structure rebuilds by check -r all) and 138 (check of huge and past-the-end offsets, leak and COPIED counts, compressed clusters crossing cluster boundaries) re-created by script, qemu-img's answer beside ours.
test_description='qemu-iotests 108 and 138: qcow2 check and refcount rebuild'
. "$(dirname "$0")/lib.sh"

# ours CMD...: our commands under a memory limit (t/lib.sh).
ours() { memlimited "$@"; }

# repair IMG: -r all by each tool on a copy (rq.img, ro.img); their -r
# all reports in rq.fix and ro.fix, what qemu-img check then finds of
# each in rq.after and ro.after.
repair() {
	cp "$1" rq.img && cp "$1" ro.img &&
	check_report rq.img qemu-img check -r all >rq.fix &&
	cp rp.err rq.err &&
	check_report ro.img img-check -r all >ro.fix &&
	cp rp.err ro.err &&
	check_report rq.img qemu-img check >rq.after &&
	check_report ro.img qemu-img check >ro.after
}

# clean REPORT: qemu-img check found nothing.
clean() {
	grep -x "exit=0" "$1" >/dev/null || { cat "$1" >&2; false; }
}

size() {
	stat -c %s "$1"
}

# off_at FILE OFF: the host offset in the 64-bit table entry at OFF
# (under 4 GiB here; the shell cannot mask 64-bit values with bit 63).
off_at() {
	echo $(( $(img-poke "$1" $(($2 + 4)) read be32) & 0xfffffe00 ))
}

# --- 108 ------------------------------------------------------------------

test_expect_success '108: image without any refcount table' '
	qemu-img create -q -f qcow2 a.qcow2 64M &&
	qio qcow2 a.qcow2 "write -P 42 0 64k" &&
	img-poke a.qcow2 48 be64 0 &&
	img-poke a.qcow2 56 be32 0 &&
	check_same_as_qemu a.qcow2 &&
	repair a.qcow2 &&
	test_cmp rq.fix ro.fix &&
	clean ro.after && test_cmp rq.after ro.after &&
	qio qcow2 ro.img "read -P 42 0 64k" &&
	qemu-img compare rq.img ro.img
'

# 512-byte clusters: the first refcount block covers 128 KiB, all of it
# in use; an L2 entry then names a data cluster at 128 KiB, just past the
# file, filled by writing the file raw. Rebuilding needs a new refcount
# block, which must not go over that data.
test_expect_success '108: unreferenced data cluster in a new refcount block area' '
	qemu-img create -q -f qcow2 -o cluster_size=512 b.qcow2 64M &&
	qio qcow2 b.qcow2 "write 0 0x1b200" &&
	test $(size b.qcow2) = 131072 &&
	test $(img-poke b.qcow2 $((0x1ccc8)) read be64) = 0 &&
	img-poke b.qcow2 $((0x1ccc8)) be64 0x8000000000020000 &&
	truncate -s $((0x20200)) b.qcow2 &&
	qio raw b.qcow2 "write -P 42 128k 512" &&
	qio qcow2 b.qcow2 "read -P 42 0x1b200 512" &&
	check_same_as_qemu b.qcow2 &&
	repair b.qcow2 &&
	test_cmp rq.fix ro.fix &&
	clean ro.after && test_cmp rq.after ro.after &&
	qio qcow2 ro.img "read -P 42 0x1b200 512" &&
	qemu-img compare b.qcow2 ro.img
'

# A second refcount block named at 1 MiB, past the end of the file.
# qemu-img -r all extends the file over it (1 MiB and more of nothing);
# ours, deliberately, rebuilds the refcount structures inside the file
# instead (img-check(1)), so the file does not grow. Both end clean and
# read the same.
test_expect_success '108: refcount block past the end of the file, otherwise clean' '
	qemu-img create -q -f qcow2 c.qcow2 64M &&
	img-poke c.qcow2 $((0x10008)) be64 0x100000 &&
	img-poke c.qcow2 $((0x20020)) be16 1 &&
	check_same_as_qemu c.qcow2 &&
	grep -x "ERROR refcount block 1 is outside image" rp.err &&
	repair c.qcow2 &&
	grep "corruptions-fixed=1" rq.fix &&
	grep "corruptions-fixed=1" ro.fix &&
	clean rq.after && clean ro.after &&
	test $(size rq.img) -gt $((0x100000)) &&
	test $(size ro.img) -lt $((0x100000)) &&
	qemu-img compare c.qcow2 ro.img
'

# The same without the refcount of the block set: qemu-img extends the
# file, then finds the block itself unaccounted for and rebuilds, two
# corruptions repaired; ours rebuilds at once, one (the same deliberate
# difference as above).
test_expect_success '108: refcount block past the end of the file, unallocated' '
	qemu-img create -q -f qcow2 d.qcow2 64M &&
	img-poke d.qcow2 $((0x10008)) be64 0x100000 &&
	check_same_as_qemu d.qcow2 &&
	repair d.qcow2 &&
	grep "corruptions-fixed=2" rq.fix &&
	grep "corruptions-fixed=1" ro.fix &&
	clean rq.after && clean ro.after &&
	test $(size ro.img) -lt $((0x100000)) &&
	qemu-img compare d.qcow2 ro.img
'

test_expect_success '108: refcount block past the end, signed overflow after it' '
	qemu-img create -q -f qcow2 e.qcow2 64M &&
	img-poke e.qcow2 $((0x10008)) be64 0x7fffffffffff0000 &&
	check_same_as_qemu e.qcow2 &&
	repair e.qcow2 &&
	test_cmp rq.fix ro.fix &&
	clean ro.after && test_cmp rq.after ro.after &&
	qemu-img compare rq.img ro.img
'

test_expect_success '108: refcount block past the end, unsigned overflow after it' '
	qemu-img create -q -f qcow2 f.qcow2 64M &&
	img-poke f.qcow2 $((0x10008)) be64 0xffffffffffff0000 &&
	check_same_as_qemu f.qcow2 &&
	repair f.qcow2 &&
	test_cmp rq.fix ro.fix &&
	clean ro.after && test_cmp rq.after ro.after &&
	qemu-img compare rq.img ro.img
'

# 256 KiB of free space at the end of the file (two refcount blocks'
# worth with 512-byte clusters), then the header's refcount zeroed: the
# rebuilt structures go into free space inside the file, where
# qemu-img puts them, and the file does not grow.
test_expect_success '108: rebuilding does not grow the file' '
	qemu-img create -q -f qcow2 -o cluster_size=512 g.qcow2 1M &&
	qio qcow2 g.qcow2 "write 0 64k" &&
	truncate -s $(($(size g.qcow2) + 256 * 1024)) g.qcow2 &&
	rt=$(img-poke g.qcow2 48 read be64) &&
	rb=$(img-poke g.qcow2 $rt read be64) &&
	img-poke g.qcow2 $rb be16 0 &&
	check_same_as_qemu g.qcow2 &&
	repair g.qcow2 &&
	test_cmp rq.fix ro.fix &&
	clean ro.after && test_cmp rq.after ro.after &&
	test $(size rq.img) = $(size g.qcow2) &&
	test $(size ro.img) -le $(size g.qcow2) &&
	test $(img-poke ro.img 48 read be64) = $(img-poke rq.img 48 read be64) &&
	qemu-img compare g.qcow2 ro.img
'

# The rebuild writes into free clusters inside the file now: killed at
# any of its writes, the image still reads the same and a second -r all
# finishes the job.
test_expect_success '108: rebuilding inside the file survives a kill at every write' '
	repair_survives_kills --verdict "qemu-img check" g.qcow2 g.qcow2 all
'

# A 9 MiB image with 512-byte clusters needs a refcount table of two
# clusters. The file is filled without holes, then two holes are made:
# one cluster at guest 0 (for the refcount block) and two at guest 4k
# (for the table). The rebuild must put the table in the second hole.
test_expect_success '108: the rebuilt refcount table goes into a hole left for it' '
	qemu-img create -q -f qcow2 -o cluster_size=512 h.qcow2 9M &&
	qio qcow2 h.qcow2 "write 0 8M" &&
	ofs=$((8 * 1024 * 1024)) &&
	len=16384 &&
	while test $len -ge 512; do
		s=$(size h.qcow2) &&
		while test $(size h.qcow2) = $s; do
			qio qcow2 h.qcow2 "write $ofs $len" &&
			ofs=$((ofs + len)) || return 1
		done &&
		len=$((len / 2)) || return 1
	done &&
	qio qcow2 h.qcow2 "write $ofs $((9 * 1024 * 1024 - ofs))" &&
	l1=$(img-poke h.qcow2 40 read be64) &&
	l2=$(off_at h.qcow2 $l1) &&
	d4k=$(off_at h.qcow2 $((l2 + 64))) &&
	qio qcow2 h.qcow2 "discard 0 512" "discard 4k 1k" &&
	rt=$(img-poke h.qcow2 48 read be64) &&
	rb=$(img-poke h.qcow2 $rt read be64) &&
	img-poke h.qcow2 $rb be16 0 &&
	check_same_as_qemu h.qcow2 &&
	repair h.qcow2 &&
	test_cmp rq.fix ro.fix &&
	clean ro.after && test_cmp rq.after ro.after &&
	test $(img-poke rq.img 48 read be64) = $d4k &&
	test $(img-poke ro.img 48 read be64) = $d4k &&
	qemu-img compare h.qcow2 ro.img
'

# The iotest makes a block device (a loop device or a FUSE export that
# cannot grow) of 64 MiB with the image at its start. Here: a 64 MiB
# file, the image at its start, and a file size limit of 64 MiB while
# repairing (writing past it fails with EFBIG).
test_expect_success '108: rebuilding on a file that cannot grow' '
	qemu-img create -q -f qcow2 -o cluster_size=512 i.qcow2 64M &&
	truncate -s 64M i.qcow2 &&
	qio qcow2 i.qcow2 "write 0 64k" &&
	test $(size i.qcow2) = $((64 * 1024 * 1024)) &&
	rt=$(img-poke i.qcow2 48 read be64) &&
	rb=$(img-poke i.qcow2 $rt read be64) &&
	img-poke i.qcow2 $rb be16 0 &&
	check_same_as_qemu i.qcow2 &&
	cp i.qcow2 ro.img &&
	(trap "" XFSZ && ulimit -f $((64 * 1024 * 1024 / 512)) 2>/dev/null ||
	 ulimit -f $((64 * 1024 * 1024 / 1024)) &&
	 img-check -r all ro.img >/dev/null 2>ro.err) &&
	no_sanitizer_report ro.err &&
	test $(size ro.img) -le $((64 * 1024 * 1024)) &&
	check_report ro.img qemu-img check >ro.after &&
	clean ro.after &&
	qemu-img compare i.qcow2 ro.img
'

# Beyond the iotest's own cases: refcount table entries naming a
# refcount block that another entry names, or the refcount table
# itself. Same check as qemu-img; -r all rebuilds, no worse.
test_expect_success '108: refcount table entry naming the first refcount block again' '
	qemu-img create -q -f qcow2 j.qcow2 64M &&
	qio qcow2 j.qcow2 "write -P 7 0 128k" &&
	img-poke j.qcow2 $((0x10008)) be64 0x20000 &&
	check_same_as_qemu j.qcow2 &&
	repair j.qcow2 &&
	clean ro.after && test_cmp rq.after ro.after &&
	qemu-img compare j.qcow2 ro.img
'

test_expect_success '108: refcount table entry naming the refcount table' '
	qemu-img create -q -f qcow2 k.qcow2 64M &&
	qio qcow2 k.qcow2 "write -P 7 0 128k" &&
	img-poke k.qcow2 $((0x10008)) be64 0x10000 &&
	check_same_as_qemu k.qcow2 &&
	repair k.qcow2 &&
	clean ro.after && test_cmp rq.after ro.after &&
	qemu-img compare k.qcow2 ro.img
'

# --- 138 ------------------------------------------------------------------

# A 512-byte image, 512-byte clusters: its one data cluster moved to
# 32 PiB (a multiple of 2^32 clusters). QEMU 7.2 no longer sizes its
# counting by it: both checks report the same, with little memory. The
# repair differs on purpose: qemu-img leaves the entry (a corruption
# remains); ours makes it a zero cluster, reading zeros as before
# (img-check(1)).
test_expect_success '138: data cluster at a multiple of 2^32 clusters' '
	qemu-img create -q -f qcow2 -o cluster_size=512 m.qcow2 512 &&
	qio qcow2 m.qcow2 "write 0 512" &&
	img-poke m.qcow2 2048 be64 0x8080000000000000 &&
	check_same_as_qemu m.qcow2 &&
	test_expect_code 2 ours img-check m.qcow2 >/dev/null 2>&1 &&
	repair m.qcow2 &&
	grep -x "exit=2" rq.after &&
	clean ro.after &&
	qemu-img compare m.qcow2 ro.img
'

test_expect_success '138: L2 entry naming a cluster at the end of the file' '
	qemu-img create -q -f qcow2 -o cluster_size=512 n.qcow2 64k &&
	qio qcow2 n.qcow2 "write -P 7 0 1k" &&
	l1=$(img-poke n.qcow2 40 read be64) &&
	l2=$(off_at n.qcow2 $l1) &&
	img-poke n.qcow2 $((l2 + 8)) be32 $((0x80000000)) &&
	img-poke n.qcow2 $((l2 + 12)) be32 $(size n.qcow2) &&
	check_same_as_qemu n.qcow2 &&
	grep "exceeding the end of the file by one cluster or more" rp.err &&
	grep "corruptions=2" o.report && grep "leaks=1" o.report &&
	repair n.qcow2 &&
	grep -x "exit=2" rq.after &&
	clean ro.after &&
	qemu-img compare n.qcow2 ro.img
'

# A data cluster whose refcount is 2 though one L2 entry names it (with
# the COPIED flag): a leak and a COPIED corruption. Repairing the leak
# makes the flag right: qemu-img counts one leak fixed and no corruption.
test_expect_success '138: leaked data cluster with the COPIED flag set' '
	qemu-img create -q -f qcow2 -o cluster_size=512 p.qcow2 64k &&
	qio qcow2 p.qcow2 "write -P 7 0 1k" &&
	l1=$(img-poke p.qcow2 40 read be64) &&
	l2=$(off_at p.qcow2 $l1) &&
	d=$(off_at p.qcow2 $l2) &&
	rt=$(img-poke p.qcow2 48 read be64) &&
	rb=$(img-poke p.qcow2 $rt read be64) &&
	img-poke p.qcow2 $((rb + 2 * (d / 512))) be16 2 &&
	check_same_as_qemu p.qcow2 &&
	grep "leaks=1" o.report && grep "corruptions=1" o.report &&
	repair p.qcow2 &&
	test_cmp rq.fix ro.fix &&
	grep "leaks-fixed=1" ro.fix &&
	! grep "corruptions-fixed" ro.fix &&
	clean ro.after && test_cmp rq.after ro.after &&
	qemu-img compare p.qcow2 ro.img
'

test_expect_success '138: leaked L2 table with the COPIED flag set' '
	qemu-img create -q -f qcow2 -o cluster_size=512 r.qcow2 64k &&
	qio qcow2 r.qcow2 "write -P 7 0 1k" &&
	l1=$(img-poke r.qcow2 40 read be64) &&
	l2=$(off_at r.qcow2 $l1) &&
	rt=$(img-poke r.qcow2 48 read be64) &&
	rb=$(img-poke r.qcow2 $rt read be64) &&
	img-poke r.qcow2 $((rb + 2 * (l2 / 512))) be16 2 &&
	check_same_as_qemu r.qcow2 &&
	repair r.qcow2 &&
	test_cmp rq.fix ro.fix &&
	clean ro.after && test_cmp rq.after ro.after &&
	qemu-img compare r.qcow2 ro.img
'

# Four compressed 4 KiB clusters, each compressing to about 2.5 KiB, so
# that QEMU packs them across cluster boundaries.
test_expect_success '138: compressed clusters crossing cluster boundaries' '
	perl -e "srand(1); for \$c (0..3) { print join \"\", map { \$_ % 2 ? chr(int rand 256) : q(A) } 0..4095 }" >pat &&
	qemu-img convert -f raw -O qcow2 -c -o cluster_size=4096 pat z.qcow2 &&
	l1=$(img-poke z.qcow2 40 read be64) &&
	l2=$(off_at z.qcow2 $l1) &&
	echo $l2 >l2.off &&
	e1=$(img-poke z.qcow2 $((l2 + 12)) read be32) &&
	test $(( e1 % 4096 )) != 0 &&
	check_same_as_qemu z.qcow2 &&
	grep "compressed-clusters=4" o.report && grep -x "exit=0" o.report &&
	img-convert -O raw z.qcow2 z.raw &&
	cmp pat z.raw
'

# The second one stretched to the largest size the entry can say (16
# sectors): it now covers the next compressed clusters too.
test_expect_success '138: compressed cluster size stretched over the next clusters' '
	l2=$(cat l2.off) &&
	cp z.qcow2 s.qcow2 &&
	img-poke s.qcow2 $((l2 + 8)) be32 $((0x7c000000)) &&
	check_same_as_qemu s.qcow2 &&
	grep "corruptions=1" o.report &&
	repair s.qcow2 &&
	test_cmp rq.fix ro.fix &&
	clean ro.after && test_cmp rq.after ro.after &&
	img-convert -O raw ro.img s.raw && cmp pat s.raw
'

# The last one stretched a cluster and more past the end of the file:
# its stream still ends inside the file, so both read it. qemu-img -r
# all leaves the entry (one corruption remains); so does ours, and the
# image reads the same as before.
test_expect_success '138: compressed cluster stretched past the end of the file' '
	l2=$(cat l2.off) &&
	cp z.qcow2 t.qcow2 &&
	img-poke t.qcow2 $((l2 + 24)) be32 $((0x7c000000)) &&
	check_same_as_qemu t.qcow2 &&
	grep "exceeding the end of the file by one cluster or more" rp.err &&
	img-convert -O raw t.qcow2 t.raw && cmp pat t.raw &&
	repair t.qcow2 &&
	test_cmp rq.fix ro.fix &&
	test_cmp rq.after ro.after &&
	img-convert -O raw ro.img t.raw && cmp pat t.raw
'

# The same with the refcount of the L2 table zeroed, so that the
# refcount structures are rebuilt: qemu-img writes its new refcount
# block where the stretched cluster reaches (and says the rebuilt
# structures are still broken); ours keeps them out of its way.
test_expect_success '138: compressed cluster past the end of the file, with a rebuild' '
	l2=$(cat l2.off) &&
	rt=$(img-poke t.qcow2 48 read be64) &&
	rb=$(img-poke t.qcow2 $rt read be64) &&
	img-poke t.qcow2 $((rb + 2 * (l2 / 4096))) be16 0 &&
	check_same_as_qemu t.qcow2 &&
	repair t.qcow2 &&
	grep -x "exit=2" rq.after &&
	clean ro.after &&
	img-convert -O raw ro.img t.raw && cmp pat t.raw
'

test_done
