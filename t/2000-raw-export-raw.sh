#!/bin/sh
# 2000-raw-export-raw.sh: raw images export and map exactly as qemu-img does.
test_description='raw export and map of raw images'
. "$(dirname "$0")/lib.sh"

test_expect_success 'sparse raw with data at varied offsets' '
	truncate -s 64M sparse.raw &&
	qio raw sparse.raw "write -P 0x11 0 4k" "write -P 0x22 1M 100k" \
		"write -P 0x33 5000k 512" "write -P 0x44 63M 1M" &&
	both_same sparse.raw &&
	both_same -f raw sparse.raw
'

test_expect_success 'a size that is not a multiple of 512 (qemu-img rounds up)' '
	head -c 1000001 /dev/urandom >odd.raw &&
	both_same odd.raw
'

test_expect_success 'size below one sector' '
	printf abc >tiny.raw &&
	both_same tiny.raw
'

test_expect_success 'empty file' '
	: >empty.raw &&
	both_same empty.raw
'

test_expect_success 'zeros written as data, not holes' '
	dd if=/dev/zero of=zeros.raw bs=64k count=16 2>/dev/null &&
	both_same zeros.raw
'

test_expect_success 'fully allocated random data' '
	head -c 3M /dev/urandom >full.raw &&
	both_same full.raw
'

test_expect_success 'a raw file that looks like a qcow2 header, read with -f raw' '
	qemu-img create -q -f qcow2 fake.raw 1M &&
	truncate -s 1M fake.raw &&
	qio raw fake.raw "write -P 0x55 512k 4k" &&
	both_same -f raw fake.raw
'

test_expect_success 'large sparse raw (1 GiB) exports sparse' '
	truncate -s 1G big.raw &&
	qio raw big.raw "write -P 0x66 700M 64k" "write -P 0x67 1023M 1M" &&
	both_same big.raw &&
	test $(stat -c %b raw.ours) -lt 16384
'

test_done
