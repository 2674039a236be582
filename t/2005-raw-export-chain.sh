#!/bin/sh
# 2005-raw-export-chain.sh: backing chains of mixed formats, relative names in other directories, probed backing formats.
test_description='raw export and map through backing chains'
. "$(dirname "$0")/lib.sh"

test_expect_success 'qed over qcow2 over raw, each in its own directory' '
	mkdir base mid other &&
	truncate -s 8M base/base.raw &&
	qio raw base/base.raw "write -P 0x11 0 8M" "write -z 6M 1M" &&
	qemu-img create -q -f qcow2 -b ../base/base.raw -F raw mid/mid.qcow2 6M &&
	qio qcow2 mid/mid.qcow2 "write -P 0x12 1M 1M" "write -z 2M 64k" \
		"write -P 0x13 3000000 5000" &&
	qemu-img create -q -f qed -b mid/mid.qcow2 -F qcow2 top.qed 10M &&
	qio qed top.qed "write -P 0x14 1536k 64k" "write -z 4M 64k" \
		"write -P 0x15 9M 4k" &&
	both_same top.qed
'

test_expect_success 'the same chain seen from another working directory' '
	(
		cd other &&
		both_same ../top.qed &&
		both_same ../mid/mid.qcow2
	)
'

test_expect_success 'absolute backing file names' '
	qemu-img create -q -f qcow2 -b "$PWD/base/base.raw" -F raw other/abs.qcow2 8M &&
	qio qcow2 other/abs.qcow2 "write -P 0x16 0 64k" &&
	both_same other/abs.qcow2
'

test_expect_success 'backing format not recorded: probed (qcow2 over qcow2)' '
	qemu-img create -q -f qcow2 probe-base.qcow2 2M &&
	qio qcow2 probe-base.qcow2 "write -P 0x21 0 1M" &&
	qemu-img create -q -f qcow2 -b probe-base.qcow2 -F qcow2 probe-top.qcow2 2M &&
	test $(img-poke probe-top.qcow2 112 read be32) = $((0xe2792aca)) &&
	img-poke probe-top.qcow2 112 be32 0x12345678 &&
	qio qcow2 probe-top.qcow2 "write -P 0x22 512k 64k" &&
	both_same probe-top.qcow2
'

test_expect_success 'qcow v1 cannot record a backing format: probed (qcow over qed)' '
	qemu-img create -q -f qed v1-base.qed 2M &&
	qio qed v1-base.qed "write -P 0x23 0 2M" &&
	qemu-img create -q -f qcow -b v1-base.qed -F qed v1-top.qcow 2M &&
	qio qcow v1-top.qcow "write -P 0x24 4k 512" &&
	both_same v1-top.qcow
'

test_expect_success 'a chain of 10 qcow2 layers, each writing its own clusters' '
	truncate -s 4M layer0.raw &&
	qio raw layer0.raw "write -P 0x30 0 4M" &&
	prev=layer0.raw prevfmt=raw &&
	for i in 1 2 3 4 5 6 7 8 9 10; do
		qemu-img create -q -f qcow2 -o cluster_size=4k -b $prev -F $prevfmt \
			layer$i.qcow2 4M &&
		qio qcow2 layer$i.qcow2 "write -P $((0x30 + i)) $((i * 256))k 8k" \
			"write -z $((i * 300))k 4k" || return 1
		prev=layer$i.qcow2 prevfmt=qcow2
	done &&
	both_same layer10.qcow2
'

test_expect_success 'each layer shorter than the one above' '
	truncate -s 1M short.raw &&
	qio raw short.raw "write -P 0x41 0 1M" &&
	qemu-img create -q -f qed -b short.raw -F raw short.qed 2M &&
	qio qed short.qed "write -P 0x42 1536k 4k" &&
	qemu-img create -q -f qcow2 -b short.qed -F qed short.qcow2 3M &&
	both_same short.qcow2
'

test_expect_success 'top layer shorter than its backing file' '
	qemu-img create -q -f qcow2 -b base/base.raw -F raw shorter.qcow2 3M &&
	qio qcow2 shorter.qcow2 "write -P 0x43 1M 4k" &&
	both_same shorter.qcow2
'

test_done
