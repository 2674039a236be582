#!/bin/sh
# 6100-info.sh: img-info JSON fields mean what qemu-img info --output=json says, with and without --backing-chain.
test_description='img-info against qemu-img info'
. "$(dirname "$0")/lib.sh"

fields='format virtual-size cluster-size filename actual-size
	backing-filename backing-filename-format full-backing-filename
	dirty-flag format-specific snapshots'

# info_fields JSON [PREFIX]: the compared fields, one per line; an absent
# "encrypted" means false, as in qemu-img (it prints only true).
info_fields() {
	paths=
	for f in $fields encrypted; do
		paths="$paths $2$f"
	done
	# shellcheck disable=SC2086
	json_get "$1" $paths | sed "s/^\\($2encrypted\\)=<absent>\$/\\1=false/"
}

# info_same [--key PW] IMAGE: the fields agree.
info_same() {
	same_parse_ "$@" || return 1
	# shellcheck disable=SC2086
	qemu-img info --output=json $qemu_src_ >info.qemu.json &&
	# shellcheck disable=SC2086
	img-info --output=json $our_opts_ "$same_img_" >info.ours.json &&
	info_fields info.qemu.json >info.qemu &&
	info_fields info.ours.json >info.ours &&
	test_cmp info.qemu info.ours
}

# chain_same IMAGE: --backing-chain arrays agree element by element.
chain_same() {
	qemu-img info --output=json --backing-chain "$1" >chain.qemu.json &&
	img-info --output=json --backing-chain "$1" >chain.ours.json &&
	n=$(json_get chain.qemu.json 0.format 1.format 2.format 3.format 4.format |
	    grep -vc "=<absent>") &&
	: >chain.qemu && : >chain.ours &&
	i=0 &&
	while test $i -lt $n; do
		info_fields chain.qemu.json $i. >>chain.qemu &&
		info_fields chain.ours.json $i. >>chain.ours &&
		i=$((i + 1)) || return 1
	done &&
	test_cmp chain.qemu chain.ours
}

test_expect_success 'raw' '
	truncate -s 5M a.raw &&
	qio raw a.raw "write -P 1 1M 64k" &&
	info_same a.raw
'

test_expect_success 'raw of odd size' '
	head -c 1000001 /dev/zero >odd.raw &&
	info_same odd.raw
'

test_expect_success 'qcow2 v3 and v2' '
	qemu-img create -q -f qcow2 v3.qcow2 8M &&
	qio qcow2 v3.qcow2 "write -P 1 0 64k" &&
	info_same v3.qcow2 &&
	qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=4k v2.qcow2 8M &&
	info_same v2.qcow2
'

test_expect_success 'qcow2 options: zstd, refcount_bits, lazy refcounts, extended L2' '
	qemu-img create -q -f qcow2 -o compression_type=zstd,refcount_bits=1,lazy_refcounts=on,extended_l2=on,cluster_size=128k opts.qcow2 1G &&
	info_same opts.qcow2 &&
	test "$(json_get info.ours.json format-specific.data.refcount-bits)" = format-specific.data.refcount-bits=1
'

test_expect_success 'qcow2 dirty after a crash' '
	qemu-img create -q -f qcow2 -o lazy_refcounts=on dirty.qcow2 4M &&
	qio_crash qcow2 dirty.qcow2 "write -P 1 0 64k" &&
	info_same dirty.qcow2 &&
	grep "^dirty-flag=true\$" info.ours
'

test_expect_success 'qcow2 corrupt bit' '
	qemu-img create -q -f qcow2 corrupt.qcow2 4M &&
	img-poke corrupt.qcow2 72 be64 2 &&
	info_same corrupt.qcow2
'

test_expect_success 'qcow2 external data file, raw and not' '
	qemu-img create -q -f qcow2 -o data_file=d.data d.qcow2 4M &&
	info_same d.qcow2 &&
	qemu-img create -q -f qcow2 -o data_file=dr.data,data_file_raw=on dr.qcow2 4M &&
	info_same dr.qcow2
'

test_expect_success 'qcow2 snapshots' '
	qemu-img create -q -f qcow2 snap.qcow2 4M &&
	qio qcow2 snap.qcow2 "write -P 1 0 64k" &&
	qemu-img snapshot -c first snap.qcow2 &&
	qemu-img snapshot -c "with space" snap.qcow2 &&
	qemu-img snapshot -c third snap.qcow2 &&
	qemu-img snapshot -d first snap.qcow2 &&
	info_same snap.qcow2 &&
	grep "with space" info.ours
'

test_expect_success 'qcow2 v2 snapshots (no extra data)' '
	qemu-img create -q -f qcow2 -o compat=0.10 snap2.qcow2 4M &&
	qemu-img snapshot -c old snap2.qcow2 &&
	info_same snap2.qcow2
'

test_expect_success 'qcow2 bitmaps' '
	qemu-img create -q -f qcow2 bm.qcow2 4M &&
	qemu-img bitmap --add bm.qcow2 b0 &&
	qemu-img bitmap --add -g 128k bm.qcow2 second &&
	qemu-img bitmap --disable bm.qcow2 second &&
	info_same bm.qcow2 &&
	grep second info.ours
'

test_expect_success 'qcow2 AES: info needs no key' '
	qemu-img create -q -f qcow2 --object secret,id=sec0,data=pw \
		-o encrypt.format=aes,encrypt.key-secret=sec0 aes.qcow2 4M &&
	info_same aes.qcow2 &&
	grep "^encrypted=true\$" info.ours
'

test_expect_success 'qcow and its AES variant' '
	qemu-img create -q -f qcow v1.qcow 3M &&
	info_same v1.qcow &&
	qemu-img create -q -f qcow --object secret,id=sec0,data=pw \
		-o encrypt.format=aes,encrypt.key-secret=sec0 v1-aes.qcow 3M &&
	info_same v1-aes.qcow
'

test_expect_success 'QED' '
	qemu-img create -q -f qed -o cluster_size=4k,table_size=2 a.qed 3M &&
	info_same a.qed
'

test_expect_success 'QED need-check shows as dirty' '
	qemu-img create -q -f qed crash.qed 3M &&
	qio_crash qed crash.qed "write -P 1 0 64k" &&
	test $(img-poke crash.qed 16 read le64) = 2 &&
	img-info --output=json crash.qed >crash.json &&
	test "$(json_get crash.json dirty-flag)" = dirty-flag=true
'

test_expect_success 'backing files, with and without a recorded format' '
	mkdir base mid &&
	truncate -s 8M base/base.raw &&
	qemu-img create -q -f qcow2 -b ../base/base.raw -F raw mid/mid.qcow2 8M &&
	qemu-img create -q -f qed -b mid/mid.qcow2 -F qcow2 top.qed 8M &&
	qemu-img create -q -f qcow -b top.qed -F qed v1-top.qcow 8M &&
	info_same mid/mid.qcow2 &&
	info_same top.qed &&
	info_same v1-top.qcow
'

test_expect_success '--backing-chain' '
	chain_same v1-top.qcow &&
	test $n = 4 &&
	chain_same mid/mid.qcow2 &&
	chain_same v3.qcow2
'

test_expect_success 'human output: the lines qemu-img prints the same way' '
	for img in v3.qcow2 top.qed v1.qcow a.raw; do
		qemu-img info $img >human.qemu &&
		img-info $img >human.ours &&
		for key in "image" "file format" "virtual size" "cluster_size" \
			   "backing file" "backing file format"; do
			grep "^$key: " human.qemu >want
			grep "^$key: " human.ours >got
			test_cmp want got || return 1
		done
	done
'

test_expect_success 'usage errors exit 2' '
	test_expect_code 2 img-info &&
	test_expect_code 2 img-info --output=yaml v3.qcow2 &&
	test_expect_code 2 img-info --bogus v3.qcow2
'

test_done
