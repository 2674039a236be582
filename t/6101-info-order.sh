#!/bin/sh
# 6101-info-order.sh: img-info prints what qemu-img info prints, in its order: JSON keys (recursively) and the human lines, "bitmaps:" and "encrypt:" included.
test_description='img-info key order and text against qemu-img info'
. "$(dirname "$0")/lib.sh"

# json_keys < JSON: every key in the order printed, indented by its depth
# (the text is pretty-printed, one member a line), so that nesting counts.
json_keys() {
	perl -ne 'print "$1$2\n" if /^(\s*)"([^"]*)":/'
}

# info_order_same IMAGE [OPTION...]: the JSON keys come in qemu-img's order,
# and the JSON and human texts are qemu-img's, byte for byte.
info_order_same() {
	ios_img_=$1
	shift
	qemu-img info --output=json "$@" "$ios_img_" >json.qemu &&
	img-info --output=json "$@" "$ios_img_" >json.ours &&
	json_keys <json.qemu >keys.qemu &&
	json_keys <json.ours >keys.ours &&
	test_cmp keys.qemu keys.ours &&
	test_cmp json.qemu json.ours &&
	qemu-img info "$@" "$ios_img_" >human.qemu &&
	img-info "$@" "$ios_img_" >human.ours &&
	test_cmp human.qemu human.ours
}

test_expect_success 'raw, also of odd size' '
	truncate -s 5M a.raw &&
	qio raw a.raw "write -P 1 1M 64k" &&
	info_order_same a.raw &&
	head -c 1000001 /dev/zero >odd.raw &&
	info_order_same odd.raw
'

test_expect_success 'qcow (version 1), plain, AES and over a backing file' '
	qemu-img create -q -f qcow v1.qcow 3M &&
	info_order_same v1.qcow &&
	qemu-img create -q -f qcow --object secret,id=sec0,data=pw \
		-o encrypt.format=aes,encrypt.key-secret=sec0 v1-aes.qcow 3M &&
	info_order_same v1-aes.qcow &&
	qemu-img create -q -f qcow -b a.raw -F raw v1-top.qcow 5M &&
	info_order_same v1-top.qcow
'

test_expect_success 'qcow2 v3 and v2 (compat 0.10)' '
	qemu-img create -q -f qcow2 v3.qcow2 8M &&
	qio qcow2 v3.qcow2 "write -P 1 0 64k" &&
	info_order_same v3.qcow2 &&
	qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=4k v2.qcow2 8M &&
	info_order_same v2.qcow2
'

test_expect_success 'qcow2 options: zstd, refcount_bits, lazy refcounts, extended L2' '
	qemu-img create -q -f qcow2 -o compression_type=zstd,refcount_bits=1,lazy_refcounts=on,extended_l2=on,cluster_size=128k opts.qcow2 1G &&
	info_order_same opts.qcow2
'

test_expect_success 'qcow2 with a backing file, also in another directory' '
	qemu-img create -q -f qcow2 -b v3.qcow2 -F qcow2 back.qcow2 8M &&
	info_order_same back.qcow2 &&
	mkdir sub &&
	qemu-img create -q -f qcow2 -b ../a.raw -F raw sub/over.qcow2 5M &&
	info_order_same sub/over.qcow2 &&
	grep "actual path: sub/../a.raw" human.ours
'

test_expect_success 'qcow2 snapshots, v3 and v2' '
	qemu-img create -q -f qcow2 snap.qcow2 4M &&
	qio qcow2 snap.qcow2 "write -P 1 0 64k" &&
	qemu-img snapshot -c first snap.qcow2 &&
	qemu-img snapshot -c "with space" snap.qcow2 &&
	info_order_same snap.qcow2 &&
	qemu-img create -q -f qcow2 -o compat=0.10 snap2.qcow2 4M &&
	qemu-img snapshot -c old snap2.qcow2 &&
	info_order_same snap2.qcow2
'

test_expect_success 'qcow2 bitmaps: "bitmaps" after lazy refcounts, an empty flags list on two lines' '
	qemu-img create -q -f qcow2 bm.qcow2 4M &&
	qemu-img bitmap --add bm.qcow2 b0 &&
	qemu-img bitmap --add -g 128k bm.qcow2 second &&
	qemu-img bitmap --disable bm.qcow2 second &&
	info_order_same bm.qcow2 &&
	sed -n "/^Format specific information:/,\$p" human.ours >fsi &&
	sed -n 2,5p fsi >got &&
	printf "%s\n" "    compat: 1.1" "    compression type: zlib" \
		"    lazy refcounts: false" "    bitmaps:" >expect &&
	test_cmp expect got &&
	grep -A1 "^                    \"flags\": \[\$" json.ours >flags &&
	test "$(tail -n 1 flags)" = "                    ],"
'

test_expect_success 'qcow2 with everything: bitmaps, snapshots, backing file' '
	qemu-img create -q -f qcow2 -b v3.qcow2 -F qcow2 all.qcow2 8M &&
	qemu-img bitmap --add all.qcow2 b1 &&
	qemu-img snapshot -c s1 all.qcow2 &&
	info_order_same all.qcow2
'

test_expect_success 'qcow2 AES: "encrypt" where qemu-img puts it' '
	qemu-img create -q -f qcow2 --object secret,id=sec0,data=pw \
		-o encrypt.format=aes,encrypt.key-secret=sec0 aes.qcow2 4M &&
	info_order_same aes.qcow2
'

test_expect_success 'qcow2 external data file, raw and not' '
	qemu-img create -q -f qcow2 -o data_file=d.data d.qcow2 4M &&
	info_order_same d.qcow2 &&
	qemu-img create -q -f qcow2 -o data_file=dr.data,data_file_raw=on dr.qcow2 4M &&
	qemu-img bitmap --add dr.qcow2 b2 &&
	info_order_same dr.qcow2
'

test_expect_success 'qcow2 dirty after a crash, a bitmap in use, the corrupt bit' '
	qemu-img create -q -f qcow2 -o lazy_refcounts=on dirty.qcow2 4M &&
	qio_crash qcow2 dirty.qcow2 "write -P 1 0 64k" &&
	info_order_same dirty.qcow2 &&
	qemu-img create -q -f qcow2 inuse.qcow2 4M &&
	qemu-img bitmap --add inuse.qcow2 b &&
	qio_crash qcow2 inuse.qcow2 "write -P 1 0 64k" &&
	info_order_same inuse.qcow2 &&
	grep "\[0\]: in-use" human.ours &&
	qemu-img create -q -f qcow2 corrupt.qcow2 4M &&
	img-poke corrupt.qcow2 72 be64 2 &&
	info_order_same corrupt.qcow2
'

test_expect_success 'QED, plain and over a backing file' '
	qemu-img create -q -f qed -o cluster_size=4k,table_size=2 a.qed 3M &&
	info_order_same a.qed &&
	qemu-img create -q -f qed -b back.qcow2 -F qcow2 top.qed 8M &&
	info_order_same top.qed
'

test_expect_success '--backing-chain: every image in order' '
	info_order_same top.qed --backing-chain &&
	info_order_same v1-top.qcow --backing-chain
'

test_done
