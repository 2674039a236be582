#!/bin/sh
# 6000-map-human.sh: img-map human output has qemu-img map's shape and content; JSON text matches qemu-img's layout.
test_description='img-map human output and JSON layout'
. "$(dirname "$0")/lib.sh"

header='Offset          Length          Mapped to       File'

# human_same IMAGE: our human map is qemu-img's, byte for byte.
human_same() {
	qemu-img map "$@" >human.qemu &&
	img-map "$@" >human.ours &&
	test_cmp human.qemu human.ours
}

test_expect_success 'setup' '
	qemu-img create -q -f qcow2 a.qcow2 8M &&
	qio qcow2 a.qcow2 "write -P 0x11 0 64k" "write -P 0x12 1M 200k" \
		"write -z 2M 64k" "write -P 0x13 7M 4k" &&
	mkdir base mid other &&
	truncate -s 8M base/base.raw &&
	qio raw base/base.raw "write -P 0x21 0 8M" &&
	qemu-img create -q -f qcow2 -b ../base/base.raw -F raw mid/mid.qcow2 8M &&
	qio qcow2 mid/mid.qcow2 "write -P 0x22 1M 1M" "write -z 3M 64k" &&
	qemu-img create -q -f qed -b mid/mid.qcow2 -F qcow2 top.qed 8M &&
	qio qed top.qed "write -P 0x23 1536k 64k" "write -P 0x24 6M 4k"
'

test_expect_success 'header line and columns' '
	img-map a.qcow2 >out &&
	test "$(head -n 1 out)" = "$header" &&
	sed 1d out >rows &&
	test_line_count -gt 0 rows &&
	! grep -v "^0x[0-9a-f]* *0x[0-9a-f]* *0x[0-9a-f]* *a\.qcow2\$\|^0  *0x[0-9a-f]*  *0x[0-9a-f]*  *a\.qcow2\$" rows
'

test_expect_success 'qcow2 image: same as qemu-img map' '
	human_same a.qcow2
'

test_expect_success 'backing chain in other directories: file column as qemu-img' '
	human_same top.qed &&
	(cd other && human_same ../top.qed)
'

test_expect_success 'raw, qcow and QED images' '
	truncate -s 4M sparse.raw &&
	qio raw sparse.raw "write -P 0x31 1M 64k" &&
	human_same sparse.raw &&
	qemu-img create -q -f qcow v1.qcow 4M &&
	qio qcow v1.qcow "write -P 0x32 8k 8k" "write -P 0x33 3M 4k" &&
	human_same v1.qcow &&
	qemu-img create -q -f qed plain.qed 4M &&
	qio qed plain.qed "write -P 0x34 0 4k" "write -z 1M 64k" &&
	human_same plain.qed
'

test_expect_success 'external data file: its name in the file column' '
	qemu-img create -q -f qcow2 -o data_file=d.data d.qcow2 4M &&
	qio qcow2 d.qcow2 "write -P 0x41 64k 64k" &&
	human_same d.qcow2 &&
	grep "d\.data\$" human.ours
'

test_expect_success 'extended L2 subclusters' '
	qemu-img create -q -f qcow2 -o extended_l2=on x.qcow2 4M &&
	qio qcow2 x.qcow2 "write -P 0x42 4k 4k" "write -z 8k 4k" "write -P 0x43 12k 2k" &&
	human_same x.qcow2
'

test_expect_success 'empty image: the header only' '
	qemu-img create -q -f qcow2 empty.qcow2 4M &&
	human_same empty.qcow2 &&
	test_line_count = 1 human.ours
'

test_expect_success '--output=human is the default' '
	img-map --output=human a.qcow2 >explicit &&
	img-map a.qcow2 >default &&
	test_cmp default explicit
'

test_expect_success 'compressed data: no crash, and the header comes first' '
	qemu-img convert -c -O qcow2 a.qcow2 c.qcow2 &&
	{ img-map c.qcow2 >c.out 2>c.err; echo $? >rc; } &&
	test $(cat rc) -le 1 &&
	no_sanitizer_report c.err &&
	test "$(head -n 1 c.out)" = "$header"
'

test_expect_success 'JSON text is laid out exactly as qemu-img lays it out' '
	for img in a.qcow2 top.qed v1.qcow plain.qed x.qcow2 empty.qcow2; do
		qemu-img map --output=json $img >json.qemu &&
		img-map --output=json $img >json.ours &&
		test_cmp json.qemu json.ours || return 1
	done
'

test_expect_success 'usage errors exit 2' '
	test_expect_code 2 img-map &&
	test_expect_code 2 img-map a.qcow2 a.qcow2 &&
	test_expect_code 2 img-map --output=xml a.qcow2 &&
	test_expect_code 2 img-map --no-such-option a.qcow2
'

test_expect_success 'an unknown -f format fails and names it' '
	test_must_fail img-map -f vmdk a.qcow2 2>err &&
	test_line_count = 1 err &&
	grep "^img-map: .*vmdk" err
'

test_done
