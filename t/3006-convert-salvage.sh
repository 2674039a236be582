#!/bin/sh
# 3006-convert-salvage.sh: img-convert --salvage writes what cannot be read of a damaged source (metadata, data, a backing file) as zeros, one warning per range, exit 3; qemu-img convert --salvage gives the same bytes.
test_description='img-convert --salvage'
. "$(dirname "$0")/lib.sh"

test_path_is_missing_() {
	test ! -e "$1" || { echo >&2 "$1 exists"; return 1; }
}

test_must_be_empty_() {
	test ! -s "$1" || { cat >&2 "$1"; return 1; }
}

# salvages SRC FMT RANGES PATTERN: without --salvage, converting SRC to FMT
# fails (exit 1, no output); with it, exit 3, RANGES warnings matching
# PATTERN and naming SRC, then a summary line; the output reads as
# qemu-img convert --salvage's raw output does, and passes qemu-img check
# (img-check for qcow, which qemu-img cannot check).
salvages() {
	sv_src_=$1 sv_fmt_=$2 sv_n_=$3 sv_pat_=$4
	rm -f out.$sv_fmt_ q.raw &&
	test_must_fail img-convert -O "$sv_fmt_" "$sv_src_" out.$sv_fmt_ 2>err &&
	test_path_is_missing_ out.$sv_fmt_ &&
	{ qemu-img convert --salvage -O raw "$sv_src_" q.raw 2>/dev/null; true; } &&
	test_expect_code 3 img-convert --salvage -O "$sv_fmt_" "$sv_src_" \
		out.$sv_fmt_ 2>err &&
	no_sanitizer_report err &&
	test_line_count = $((sv_n_ + 1)) err &&
	test $(grep -c "^img-convert: cannot read '$sv_src_' at 0x[0-9a-f]* ([0-9]* bytes): .*$sv_pat_.*; written as zeros\$" err) = "$sv_n_" &&
	tail -n 1 err | grep "^img-convert: '$sv_src_' converted with $sv_n_ unreadable range" >/dev/null &&
	qemu-img compare -q -f raw -F "$sv_fmt_" q.raw out.$sv_fmt_ &&
	case $sv_fmt_ in
	qcow2|qed) qemu-img check -q out.$sv_fmt_ ;;
	qcow) img-check -q out.$sv_fmt_ ;;
	esac
}

test_expect_success 'setup: qcow2, qcow and QED images with data, compressed data and a snapshot of it' '
	qemu-img create -q -f qcow2 -o cluster_size=4096 a.qcow2 1M &&
	qio qcow2 a.qcow2 "write -P 1 0 16k" "write -c -P 3 64k 4k" \
		"write -P 5 128k 8k" &&
	qemu-img create -q -f qcow c.qcow 1M &&
	qio qcow c.qcow "write -P 1 0 8k" "write -c -P 3 64k 4k" &&
	qemu-img create -q -f qed e.qed 1M &&
	qio qed e.qed "write -P 1 0 16k" &&
	l1=$(img-poke a.qcow2 44 read be32) &&
	l2=$(img-poke a.qcow2 $((l1 + 4)) read be32) &&
	test $l2 -gt 0
'

test_expect_success 'an undamaged image: --salvage changes nothing' '
	img-convert --salvage -O raw a.qcow2 plain.raw 2>err &&
	test_must_be_empty_ err &&
	qemu-img compare -q -F raw a.qcow2 plain.raw
'

test_expect_success 'qcow2: a compressed cluster that does not decompress' '
	host=$(img-poke a.qcow2 $((l2 + 16 * 8 + 4)) read be32) &&
	test $host -gt 0 &&
	damage a.qcow2 cz.qcow2 $host be32 $((0xffffffff)) \
		$((host + 4)) be32 $((0xffffffff)) &&
	salvages cz.qcow2 raw 1 "does not decompress" &&
	grep "at 0x10000 (4096 bytes)" err &&
	salvages cz.qcow2 qcow2 1 "does not decompress"
'

test_expect_success 'qcow2: an L2 entry whose data offset is not cluster aligned' '
	damage a.qcow2 un.qcow2 $((l2 + 12)) be32 $((0x6200)) &&
	salvages un.qcow2 raw 1 "not cluster aligned" &&
	grep "at 0x1000 (4096 bytes)" err &&
	salvages un.qcow2 qed 1 "not cluster aligned"
'

test_expect_success 'qcow2: an L2 table offset not cluster aligned loses what the table maps, no more' '
	damage a.qcow2 l2un.qcow2 $((l1 + 4)) be32 $((l2 + 512)) &&
	salvages l2un.qcow2 raw 1 "L2 table offset" &&
	grep "at 0x0 (1048576 bytes)" err &&
	salvages l2un.qcow2 qcow 1 "L2 table offset"
'

test_expect_success 'qcow: a compressed cluster that does not decompress' '
	cl1=$(img-poke c.qcow 44 read be32) &&
	cl2=$(img-poke c.qcow $((cl1 + 4)) read be32) &&
	host=$(img-poke c.qcow $((cl2 + 16 * 8 + 4)) read be32) &&
	test $host -gt 0 &&
	damage c.qcow cz.qcow $host be32 $((0xffffffff)) \
		$((host + 4)) be32 $((0xffffffff)) &&
	salvages cz.qcow raw 1 "decompress" &&
	salvages cz.qcow qcow2 1 "decompress"
'

test_expect_success 'QED: an L2 table offset beyond the end of the file' '
	el1=$(img-poke e.qed 40 read le64) &&
	damage e.qed l2eof.qed $el1 le64 $((0x1000000)) &&
	salvages l2eof.qed raw 1 "L2 table" &&
	salvages l2eof.qed qcow2 1 "L2 table"
'

test_expect_success 'a damaged backing file: the warning names it, the child converts' '
	qemu-img create -q -f qcow2 -b cz.qcow2 -F qcow2 child.qcow2 &&
	qio qcow2 child.qcow2 "write -P 7 0 4k" &&
	salvages child.qcow2 raw 1 "backing file .cz.qcow2.: compressed cluster" &&
	salvages child.qcow2 qcow2 1 "backing file .cz.qcow2."
'

test_expect_success 'read errors (EIO from the second read on): what was read is kept, the rest is zeros' '
	head -c 3M /dev/urandom >r.raw &&
	test_expect_code 3 env IMG_FAULT_READ=2 img-convert --salvage -f raw \
		-O raw r.raw out.raw 2>err &&
	no_sanitizer_report err &&
	test_line_count = 2 err &&
	grep "^img-convert: cannot read .r.raw. at 0x200000 (1048576 bytes): .*Input/output error; written as zeros\$" err &&
	head -c 2M r.raw >want.raw &&
	head -c 1M /dev/zero >>want.raw &&
	cmp want.raw out.raw
'

test_expect_success 'a missing key stays fatal: zeros would hide it' '
	qemu-img create -q -f qcow -o encryption=on,encrypt.key-secret=sec0 \
		--object secret,id=sec0,data=pass e.qcow 1M &&
	test_must_fail img-convert --salvage -O raw e.qcow out2.raw 2>err &&
	test_path_is_missing_ out2.raw &&
	grep "key" err
'

test_done
