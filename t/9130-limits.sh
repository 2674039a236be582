#!/bin/sh
# 9130-limits.sh: hostile headers (huge tables, sizes, counts and lengths, tables pointing at themselves, deep and looping backing chains) make no command allocate more than a bound, nor run long: each works or gives a one-line error, quickly.
test_description='resource limits against hostile headers'
. "$(dirname "$0")/lib.sh"

# Under D=1 (ASan) the address space is huge by design: no ulimit -v then,
# and the peak RSS bound allows for the sanitizer's own memory.
if grep -q fsanitize "$SRC_ROOT/.build-flags" 2>/dev/null; then
	LIMIT_VM=
	LIMIT_RSS=$((400 * 1024))
	LIMIT_SECS=60
else
	LIMIT_VM=$((512 * 1024))
	LIMIT_RSS=$((100 * 1024))
	LIMIT_SECS=20
fi

# bounded LABEL CMD...: CMD under ulimit -v 512 MiB and a 20 s timeout
# (under D=1: no ulimit, 60 s);
# it must exit 0 or fail the ordinary way (img-check: 1, 2 or 3 after a
# check), within the time, with a peak RSS under LIMIT_RSS KiB; a failure
# to open says so in one line naming the image. timeout runs under maxrss,
# so that the command it kills is not left running and its peak counts.
bounded() {
	bd_label_=$1
	shift
	rm -f rss.out
	(
		test -z "$LIMIT_VM" || ulimit -v $LIMIT_VM
		exec ./maxrss rss.out timeout -k 5 $LIMIT_SECS "$@"
	) >/dev/null 2>bd.err
	bd_code_=$?
	no_sanitizer_report bd.err || return 1
	case $bd_code_ in
	0|1|2|3) ;;
	124) echo >&2 "$bd_label_: timed out: $*"; return 1 ;;
	*) echo >&2 "$bd_label_: exit $bd_code_: $*"; tail -n 3 bd.err >&2; return 1 ;;
	esac
	test -s rss.out &&
	test "$(cat rss.out)" -lt $LIMIT_RSS ||
		{ echo >&2 "$bd_label_: peak RSS $(cat rss.out) KiB: $*"; return 1; }
	if grep "cannot open" bd.err >/dev/null; then
		test_line_count = 1 bd.err &&
		grep "^img-[a-z]*: cannot open '[^']*': ." bd.err >/dev/null ||
			{ echo >&2 "$bd_label_: not one clear line"; return 1; }
	fi
	echo "$bd_label_ exit=$bd_code_ rss=$(cat rss.out)"
}

# every IMG: each command on IMG (the in-place ones on a copy).
every() {
	bounded info img-info "$1" &&
	bounded map img-map "$1" &&
	bounded check img-check "$1" &&
	cp "$1" w.img && bounded check-r-leaks img-check -r leaks w.img &&
	cp "$1" w.img && bounded check-r-all img-check -r all w.img &&
	cp "$1" w.img && bounded compact img-compact w.img &&
	for o in raw qcow2 qed qcow; do
		rm -f out.$o &&
		bounded convert-$o img-convert -O $o "$1" out.$o || return 1
	done
}

# hostile SRC DST OFFSET TYPE VALUE...: DST is SRC with fields poked.
hostile() {
	damage "$@"
}

test_expect_success 'setup' '
	cc -O2 -o maxrss "$TEST_DIRECTORY/perf/maxrss.c" &&
	qemu-img create -q -f qcow2 q.qcow2 4M &&
	qio qcow2 q.qcow2 "write -P 1 0 128k" "write -P 2 2M 64k" &&
	qemu-img create -q -f qed e.qed 4M &&
	qio qed e.qed "write -P 1 0 128k" "write -P 2 2M 64k" &&
	qemu-img create -q -f qcow v.qcow 4M &&
	qio qcow v.qcow "write -P 1 0 128k" "write -P 2 2M 64k" &&
	test $(img-poke q.qcow2 40 read be64) = $((0x30000)) &&
	test $(img-poke e.qed 40 read le64) = $((0x10000)) &&
	test $(img-poke v.qcow 40 read be64) = 48 &&
	every q.qcow2 && every e.qed && every v.qcow
'

# qcow2 header: size 24, l1_size 36, l1_offset 40, refcount table
# clusters 56, snapshots 60 (count) and 64 (offset), extensions at 0x70.
test_expect_success 'qcow2: huge L1, refcount, snapshot tables and sizes' '
	hostile q.qcow2 l1max.qcow2 36 be32 0x7fffffff &&
	every l1max.qcow2 &&
	hostile q.qcow2 l1cap.qcow2 36 be32 4194304 &&
	every l1cap.qcow2 &&
	hostile q.qcow2 l1cap2.qcow2 36 be32 4194304 24 be64 $((1 << 51)) &&
	every l1cap2.qcow2 &&
	hostile q.qcow2 size62.qcow2 24 be64 $((1 << 62)) &&
	every size62.qcow2 &&
	hostile q.qcow2 size50.qcow2 24 be64 $((1 << 50)) 36 be32 $((1 << 21)) &&
	every size50.qcow2 &&
	hostile q.qcow2 reft.qcow2 56 be32 0xffffffff &&
	every reft.qcow2 &&
	hostile q.qcow2 reftcap.qcow2 56 be32 128 &&
	every reftcap.qcow2 &&
	hostile q.qcow2 snap.qcow2 60 be32 65536 64 be64 $((0x70000)) &&
	every snap.qcow2 &&
	hostile q.qcow2 snapmax.qcow2 60 be32 0xffffffff 64 be64 $((0x70000)) &&
	every snapmax.qcow2 &&
	hostile q.qcow2 ext.qcow2 $((0x74)) be32 0xffffffff &&
	every ext.qcow2
'

test_expect_success 'qcow2: tables pointing at themselves and at each other' '
	hostile q.qcow2 l1self.qcow2 $((0x30000)) be64 $((0x8000000000030000)) &&
	every l1self.qcow2 &&
	hostile q.qcow2 l2self.qcow2 $((0x40000)) be64 $((0x8000000000040000)) &&
	every l2self.qcow2 &&
	hostile q.qcow2 reftself.qcow2 $((0x10000)) be64 $((0x10000)) &&
	every reftself.qcow2 &&
	hostile q.qcow2 refbl1.qcow2 $((0x10000)) be64 $((0x30000)) &&
	every refbl1.qcow2
'

# QED header: cluster size 4, table size 8, header size 12, L1 at 40,
# image size 48.
test_expect_success 'QED: huge clusters, tables, sizes and headers' '
	hostile e.qed cl64m.qed 4 le32 $((64 << 20)) 8 le32 16 &&
	every cl64m.qed &&
	hostile e.qed huge.qed 4 le32 $((64 << 20)) 8 le32 16 \
		40 le64 $((64 << 20)) 48 le64 $((1 << 60)) &&
	every huge.qed &&
	hostile e.qed size62.qed 48 le64 $((1 << 62)) &&
	every size62.qed &&
	hostile e.qed hdr.qed 12 le32 0xffffffff &&
	every hdr.qed &&
	hostile e.qed l1self.qed $((0x10000)) le64 $((0x10000)) &&
	every l1self.qed
'

# qcow header: size 24, cluster bits 32, L2 bits 33, L1 at 40.
test_expect_success 'qcow: an L1 table of a GiB, huge sizes, tables pointing at themselves' '
	hostile v.qcow big.qcow 32 u8 16 33 u8 13 24 be64 $((1 << 56)) &&
	every big.qcow &&
	test_expect_code 1 img-check big.qcow 2>err &&
	grep "L1 table at 0x30 (1073741824 bytes) runs past end of file" err &&
	hostile v.qcow size62.qcow 24 be64 $((1 << 62)) &&
	every size62.qcow &&
	hostile v.qcow l1self.qcow 48 be64 48 &&
	every l1self.qcow &&
	hostile v.qcow l2self.qcow $((0x1000)) be64 $((0x1000)) &&
	every l2self.qcow
'

test_expect_success 'backing file names of the longest length, and past it' '
	long=$(printf "%01023d" 0 | tr 0 n) &&
	qemu-img create -q -f qcow2 -u -b "$long" -F raw bq.qcow2 1M &&
	every bq.qcow2 &&
	qemu-img create -q -f qcow -u -b "$long" -F raw bv.qcow 1M &&
	every bv.qcow &&
	hostile bq.qcow2 bq2.qcow2 16 be32 0xffffffff &&
	every bq2.qcow2 &&
	hostile bv.qcow bv2.qcow 16 be32 0xffffffff &&
	every bv2.qcow
'

test_expect_success 'a 64-deep backing chain opens, a 65-deep one is refused' '
	qemu-img create -q -f qcow2 c0.qcow2 1M &&
	i=1 &&
	while test $i -le 65; do
		qemu-img create -q -f qcow2 -u -b c$((i - 1)).qcow2 -F qcow2 \
			c$i.qcow2 1M || return 1
		i=$((i + 1))
	done &&
	every c64.qcow2 &&
	img-map c64.qcow2 >/dev/null &&
	every c65.qcow2 &&
	test_expect_code 1 img-map c65.qcow2 2>err &&
	test_line_count = 1 err &&
	grep "backing chain deeper than 64 images" err
'

test_expect_success 'looping backing chains are refused' '
	qemu-img create -q -f qcow2 la.qcow2 1M &&
	qemu-img create -q -f qcow2 -u -b la.qcow2 -F qcow2 lb.qcow2 1M &&
	qemu-img rebase -q -u -f qcow2 -b lb.qcow2 -F qcow2 la.qcow2 &&
	every la.qcow2 &&
	test_expect_code 1 img-map la.qcow2 2>err &&
	test_line_count = 1 err &&
	qemu-img create -q -f qed ls.qed 1M &&
	qemu-img rebase -q -u -f qed -b ls.qed -F qed ls.qed &&
	every ls.qed &&
	test_expect_code 1 img-map ls.qed 2>err &&
	test_line_count = 1 err
'

test_done
