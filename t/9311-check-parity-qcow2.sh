#!/bin/sh
# 9311-check-parity-qcow2.sh: a battery of damaged qcow2 images (one field of the header, an L1, L2, refcount or snapshot table entry each): img-check reports as qemu-img check does, and -r all leaves an image no worse than qemu-img's own repair.
test_description='qcow2 damage battery against qemu-img check'
. "$(dirname "$0")/lib.sh"

# base.qcow2: 4 KiB clusters; data, a zero cluster, a compressed cluster;
# a snapshot, then a write that splits the first L2 table from it.
test_expect_success 'setup: the base image and its damaged copies' '
	qemu-img create -q -f qcow2 -o cluster_size=4096 base.qcow2 4M &&
	qio qcow2 base.qcow2 "write -P 1 0 16k" "write -P 2 1M 8k" \
		"write -z 2M 4k" "write -c -P 3 3M 4k" &&
	qemu-img snapshot -c s1 base.qcow2 &&
	qio qcow2 base.qcow2 "write -P 4 0 4k" &&
	l1=$(img-poke base.qcow2 40 read be64) &&
	rt=$(img-poke base.qcow2 48 read be64) &&
	l2=$(img-poke base.qcow2 $((l1 + 4)) read be32) &&
	rb=$(img-poke base.qcow2 $((rt + 4)) read be32) &&
	so=$(img-poke base.qcow2 64 read be64) &&
	test $l2 -gt 0 && test $rb -gt 0 && test $so -gt 0 &&
	n=0 &&
	while read -r off type vals; do
		for v in $vals; do
			n=$((n + 1)) &&
			damage base.qcow2 d$n.qcow2 $off $type $v &&
			echo "d$n: $off $type $v" >>damages || return 1
		done
	done <<-EOF &&
	$l1 be32 0 512 4096 1048576 $l1
	$((l1 + 4)) be32 0 512 1048576 $l1 $rb
	$l2 be32 0 $((1 << 31)) 1
	$((l2 + 4)) be32 0 1 512 1048576 $l1 $rt
	$((l2 + 8)) be32 0 $((1 << 31))
	$((l2 + 12)) be32 1048576 0
	$((rt + 4)) be32 0 512 1048576 $l1
	$rb be16 0 2 65535
	$((rb + 2)) be16 0 2
	$((rb + 6)) be16 0 2
	$((rb + 100)) be16 1 2
	$((so + 4)) be32 512 1048576 $l1
	$((so + 8)) be32 0 2147483647 2
	36 be32 0 100
	56 be32 0 2 100
	EOF
	test_line_count = 47 damages
'

test_expect_success 'every damaged copy: the same report as qemu-img check' '
	for f in base $(cut -d: -f1 damages); do
		check_report $f.qcow2 qemu-img check >q.report &&
		check_report $f.qcow2 img-check >o.report &&
		test_cmp q.report o.report ||
		{ grep "^$f:" damages; return 1; }
	done
'

# After -r all by each tool: qemu-img check finds ours no worse (exit 0
# clean, 1 unreadable, 2 corrupt, 3 leaks: clean first, then leaks) and,
# where both repaired images can be read, they read the same.
rank() {
	case $1 in 0) echo 0 ;; 3) echo 1 ;; 2) echo 2 ;; *) echo 3 ;; esac
}
test_expect_success 'every damaged copy: -r all no worse than qemu-img -r all' '
	for f in $(cut -d: -f1 damages); do
		cp $f.qcow2 q.img && cp $f.qcow2 o.img &&
		{ qemu-img check -r all q.img >/dev/null 2>&1; true; } &&
		{ img-check -r all o.img >/dev/null 2>o.err; test $? -lt 124; } &&
		no_sanitizer_report o.err &&
		{ qemu-img check q.img >/dev/null 2>&1; qa=$?; true; } &&
		{ qemu-img check o.img >/dev/null 2>&1; oa=$?; true; } &&
		test $(rank $oa) -le $(rank $qa) &&
		{ ! qemu-img compare -q q.img q.img 2>/dev/null ||
		  ! qemu-img compare -q o.img o.img 2>/dev/null ||
		  qemu-img compare -q q.img o.img; } ||
		{ grep "^$f:" damages; echo >&2 "qemu-img check after: qemu $qa, ours $oa"; return 1; }
	done
'

# Reading: where qemu-img convert reads a damaged copy, img-convert reads
# the same bytes; where it refuses, so do we (one line, exit 1).
test_expect_success 'every damaged copy: img-convert reads what qemu-img convert reads' '
	for f in $(cut -d: -f1 damages); do
		rm -f q.raw o.raw &&
		{ qemu-img convert -O raw $f.qcow2 q.raw 2>/dev/null; qc=$?; true; } &&
		{ img-convert -O raw $f.qcow2 o.raw 2>o.err; oc=$?; true; } &&
		no_sanitizer_report o.err &&
		test $qc = $oc &&
		if test $qc = 0; then
			cmp q.raw o.raw
		else
			test_line_count = 1 o.err
		fi ||
		{ grep "^$f:" damages; echo >&2 "convert: qemu-img $qc, ours $oc"; return 1; }
	done
'

test_done
