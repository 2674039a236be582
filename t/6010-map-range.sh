#!/bin/sh
# 6010-map-range.sh: img-map --start-offset/--max-length print what qemu-img map prints for the same range, and cost what the range holds.
test_description='img-map --start-offset and --max-length'
. "$(dirname "$0")/lib.sh"

# range_same IMAGE [OPTION...]: human and JSON output, byte for byte, and
# the exit status are qemu-img map's.
range_same() {
	rs_img_=$1
	shift
	for rs_out_ in human json; do
		qemu-img map --output=$rs_out_ "$@" "$rs_img_" >range.qemu
		rs_want_=$?
		img-map --output=$rs_out_ "$@" "$rs_img_" >range.ours
		rs_got_=$?
		test $rs_want_ = 0 && test $rs_got_ = 0 &&
		test_cmp range.qemu range.ours || {
			echo >&2 "differs: map $* $rs_img_ --output=$rs_out_ (exit $rs_want_/$rs_got_)"
			return 1
		}
	done
}

# ranges_same IMAGE: range_same for START:LENGTH pairs around the extents
# of the images below: whole, mid-extent starts and ends, across extent
# boundaries, single bytes, empty, at and past the end, and lengths past
# the end, in every notation (suffixes, fractions, hexadecimal).
ranges_same() {
	for rs_r_ in : 1000: 0:1 1000:100k 4k:1000 5k:0x2400 65535:64k \
		     1M:0x300000 1025k:1 1.5M:1M 0x1ff000:64k 3999999:1E \
		     4000000: 4M:4k 7M:1E 8M: 9M:1 1E: 0:0 1M:0; do
		set -- "$1"
		test -z "${rs_r_%:*}" || set -- "$@" --start-offset=${rs_r_%:*}
		test -z "${rs_r_#*:}" || set -- "$@" --max-length=${rs_r_#*:}
		range_same "$@" || return 1
	done
}

test_expect_success 'setup' '
	qemu-img create -q -f qcow2 a.qcow2 8M &&
	qio qcow2 a.qcow2 "write -P 0x11 0 64k" "write -P 0x12 1M 200k" \
		"write -z 2M 64k" "write -P 0x13 7M 4k" &&
	qemu-img create -q -f qcow v1.qcow 4M &&
	qio qcow v1.qcow "write -P 0x32 8k 8k" "write -P 0x33 3M 4k" &&
	qemu-img create -q -f qed p.qed 4M &&
	qio qed p.qed "write -P 0x34 0 4k" "write -z 1M 64k" "write -P 0x35 2M 100k" &&
	truncate -s 4000001 odd.raw &&
	qio raw odd.raw "write -P 0x31 1M 64k" "write -P 0x36 5000 3000" \
		"write -P 0x37 3999000 1001" &&
	qemu-img create -q -f qcow2 -o extended_l2=on x.qcow2 4M &&
	qio qcow2 x.qcow2 "write -P 0x42 4k 4k" "write -z 8k 4k" "write -P 0x43 12k 2k" &&
	mkdir base &&
	truncate -s 8M base/base.raw &&
	qio raw base/base.raw "write -P 0x21 0 8M" &&
	qemu-img create -q -f qcow2 -b base/base.raw -F raw mid.qcow2 8M &&
	qio qcow2 mid.qcow2 "write -P 0x22 1M 1M" "write -z 3M 64k" &&
	qemu-img create -q -f qed -b mid.qcow2 -F qcow2 top.qed 8M &&
	qio qed top.qed "write -P 0x23 1536k 64k" "write -P 0x24 6M 4k"
'

test_expect_success 'qcow2: every range as qemu-img maps it' '
	ranges_same a.qcow2
'

test_expect_success 'qcow (version 1)' '
	ranges_same v1.qcow
'

test_expect_success 'QED' '
	ranges_same p.qed
'

test_expect_success 'raw of odd size, holes not aligned to 4 KiB' '
	ranges_same odd.raw
'

test_expect_success 'qcow2 with extended L2 (subclusters)' '
	ranges_same x.qcow2
'

test_expect_success 'a backing chain: QED over qcow2 over raw' '
	ranges_same top.qed
'

test_expect_success 'mid-extent start: the host offset moves with it' '
	img-map --start-offset=1000 --max-length=100k a.qcow2 >out &&
	sed -n 2p out >row &&
	echo "0x3e8           0xfc18          0x503e8         a.qcow2" >expect &&
	test_cmp expect row
'

test_expect_success 'at or past the end: the header, or one empty extent at the start' '
	img-map -s 8M a.qcow2 >out &&
	test_line_count = 1 out &&
	img-map -s 9M --output=json a.qcow2 >out &&
	echo "[{ \"start\": 9437184, \"length\": 0, \"depth\": 0, \"present\": false, \"zero\": false, \"data\": false}]" >expect &&
	test_cmp expect out
'

test_expect_success '-s and -l are --start-offset and --max-length' '
	img-map --output=json --start-offset=1M --max-length=300k top.qed >long &&
	img-map --output=json -s 1M -l 300k top.qed >short &&
	test_cmp long short &&
	range_same top.qed -s 1M -l 300k
'

test_expect_success 'the largest values: start 2^63-1, length 2^63-1' '
	range_same a.qcow2 -s 9223372036854775807 &&
	range_same a.qcow2 -s 0x7fffffffffffffff -l 7E &&
	range_same a.qcow2 -l 9223372036854775807
'

# qemu-img adds start and length in signed 64 bits: past 2^63 the sum
# wraps and it maps nothing; img-map maps to the end (img-map(1)).
test_expect_success 'start + length beyond 2^63: mapped to the end' '
	img-map --output=json -s 4M -l 9223372036854775807 a.qcow2 >huge &&
	img-map --output=json -s 4M a.qcow2 >toend &&
	test_cmp toend huge
'

test_expect_success 'invalid values: a usage error naming the option' '
	for v in -1 abc 1.5 8E 9223372036854775808 0x 0x-1 0x1.8k 0x10k "1 k" ""; do
		test_expect_code 2 img-map -s "$v" a.qcow2 >out 2>err &&
		test_line_count = 0 out &&
		test_line_count = 1 err &&
		grep "^img-map: invalid start offset '"'"'$v'"'"': " err &&
		test_expect_code 2 img-map --max-length="$v" a.qcow2 2>err &&
		test_line_count = 1 err &&
		grep "^img-map: invalid max length '"'"'$v'"'"': " err || return 1
	done &&
	test_expect_code 2 img-map -s 2>err &&
	test_expect_code 2 img-map -l 1M -s 2>err
'

test_expect_success 'the range is checked before the image is opened' '
	test_expect_code 2 img-map -s -1 no-such.qcow2 2>err &&
	grep "invalid start offset" err
'

# The cost is what the range holds: a few extents of 8 TiB images are
# found at once, however far into the disk.
test_expect_success '8 TiB sparse images: small ranges at once, as qemu-img' '
	qemu-img create -q -f qcow2 big.qcow2 8T &&
	qio qcow2 big.qcow2 "write -P 1 4T 1M" "write -P 2 8191G 64k" &&
	qemu-img create -q -f qed big.qed 8T &&
	qio qed big.qed "write -P 3 4T 1M" &&
	truncate -s 8T big.raw &&
	qio raw big.raw "write -P 4 4T 1M" &&
	for img in big.qcow2 big.qed big.raw; do
		for r in "-s 4T -l 2M" "-s 4398046512000 -l 1000000" \
			 "-s 8191G" "-s 1T -l 1T" "-s 8T"; do
			# shellcheck disable=SC2086
			timeout 5 img-map --output=json $r $img >/dev/null &&
			# shellcheck disable=SC2086
			timeout 5 img-map $r $img >/dev/null &&
			# shellcheck disable=SC2086
			range_same $img $r || return 1
		done
	done
'

test_done
