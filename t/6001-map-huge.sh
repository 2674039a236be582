#!/bin/sh
# 6001-map-huge.sh: img-map on 4 TiB images with a few MiB written finishes promptly and agrees with qemu-img.
test_description='img-map on huge sparse images'
. "$(dirname "$0")/lib.sh"

# quick_map IMAGE: both outputs of img-map finish within 10 seconds.
quick_map() {
	timeout 10 img-map --output=json "$1" >/dev/null &&
	timeout 10 img-map "$1" >/dev/null
}

test_expect_success 'qcow2, 4 TiB, 64 KiB clusters' '
	qemu-img create -q -f qcow2 big.qcow2 4T &&
	qio qcow2 big.qcow2 "write -P 0x11 0 1M" "write -P 0x12 1T 1M" \
		"write -z 2T 64k" "write -P 0x13 3T 64k" "write -P 0x14 4398045462528 1M" &&
	quick_map big.qcow2 &&
	map_same big.qcow2
'

test_expect_success 'qcow2, 4 TiB, 2 MiB clusters, extended L2' '
	qemu-img create -q -f qcow2 -o cluster_size=2M,extended_l2=on big-xl2.qcow2 4T &&
	qio qcow2 big-xl2.qcow2 "write -P 0x15 0 64k" "write -P 0x16 1T 1M" \
		"write -z 3T 64k" &&
	quick_map big-xl2.qcow2 &&
	map_same big-xl2.qcow2
'

test_expect_success 'QED, 4 TiB' '
	qemu-img create -q -f qed big.qed 4T &&
	qio qed big.qed "write -P 0x21 0 1M" "write -P 0x22 1T 1M" \
		"write -z 2T 64k" "write -P 0x23 4398045462528 1M" &&
	quick_map big.qed &&
	map_same big.qed
'

# qemu-img map walks qcow v1 a cluster at a time (minutes for 1 TiB), so
# it checks the content of a 4 GiB image only.
test_expect_success 'qcow, 1 TiB (ours only) and 4 GiB (against qemu-img)' '
	qemu-img create -q -f qcow big.qcow 1T &&
	qio qcow big.qcow "write -P 0x24 0 1M" "write -P 0x25 512G 64k" \
		"write -P 0x26 1099510579200 1M" &&
	quick_map big.qcow &&
	qemu-img create -q -f qcow 4g.qcow 4G &&
	qio qcow 4g.qcow "write -P 0x27 0 1M" "write -P 0x28 2G 64k" \
		"write -P 0x29 4293918720 1M" &&
	map_same 4g.qcow
'

test_expect_success 'qcow2 over a 4 TiB qcow2' '
	qemu-img create -q -f qcow2 -b big.qcow2 -F qcow2 over.qcow2 4T &&
	qio qcow2 over.qcow2 "write -P 0x31 512k 1M" "write -P 0x32 3T 4k" &&
	quick_map over.qcow2 &&
	map_same over.qcow2
'

test_expect_success 'raw, 4 TiB sparse' '
	truncate -s 4T big.raw &&
	qio raw big.raw "write -P 0x41 0 64k" "write -P 0x42 2T 64k" &&
	quick_map big.raw &&
	map_same big.raw
'

test_done
