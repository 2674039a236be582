#!/bin/sh
# 2004-raw-export-qed.sh: QED images (cluster and table sizes, zero clusters, backing files, need-check) export and map as qemu-img does.
test_description='raw export and map of QED images'
. "$(dirname "$0")/lib.sh"

varied_writes() {
	qio qed "$1" "write -P 0x11 0 4k" "write -P 0x12 6000 3000" \
		"write -P 0x13 2040k 16k" "write -z 3M 64k" \
		"write -P 0x14 5M 1M" "write -P 0x15 8388096 512"
}

for cs in 4k 64k; do
	for ts in 2 4 16; do
		test_expect_success "cluster size $cs, table size $ts" "
			qemu-img create -q -f qed -o cluster_size=$cs,table_size=$ts c$cs-t$ts.qed 8M &&
			varied_writes c$cs-t$ts.qed &&
			both_same c$cs-t$ts.qed
		"
	done
done

test_expect_success 'cluster size 1 MiB' '
	qemu-img create -q -f qed -o cluster_size=1M big-cluster.qed 8M &&
	varied_writes big-cluster.qed &&
	both_same big-cluster.qed
'

test_expect_success 'empty and zero-size images' '
	qemu-img create -q -f qed empty.qed 8M &&
	both_same empty.qed &&
	qemu-img create -q -f qed zero-size.qed 0 &&
	both_same zero-size.qed
'

test_expect_success 'odd size 1000000 is rounded up to 512' '
	qemu-img create -q -f qed odd.qed 1000000 &&
	qio qed odd.qed "write -P 0x16 995000 5448" &&
	both_same odd.qed
'

test_expect_success 'zero clusters from aligned write -z' '
	qemu-img create -q -f qed -o cluster_size=4k zc.qed 4M &&
	qio qed zc.qed "write -P 0x21 0 64k" "write -z 16k 8k" "write -z 1M 64k" \
		"write -z 70000 100" &&
	l2=$(img-poke zc.qed 4096 read le64) &&
	test $(img-poke zc.qed $((l2 + 256 * 8)) read le64) = 1 &&
	test $(img-poke zc.qed $((l2 + 271 * 8)) read le64) = 1 &&
	both_same zc.qed
'

test_expect_success 'over a raw backing file (no-probe flag)' '
	truncate -s 4M base.raw &&
	qio raw base.raw "write -P 0x31 0 4M" &&
	qemu-img create -q -f qed -b base.raw -F raw over-raw.qed 4M &&
	test $(img-poke over-raw.qed 16 read le64) = 5 &&
	qio qed over-raw.qed "write -P 0x32 64k 64k" "write -z 128k 64k" \
		"write -P 0x33 300000 1000" &&
	both_same over-raw.qed
'

test_expect_success 'over a qcow2 backing file, larger than it' '
	qemu-img create -q -f qcow2 base.qcow2 2M &&
	qio qcow2 base.qcow2 "write -P 0x34 0 1M" "write -z 1M 64k" &&
	qemu-img create -q -f qed -b base.qcow2 -F qcow2 over-qcow2.qed 6M &&
	qio qed over-qcow2.qed "write -P 0x35 512k 64k" "write -z 0 64k" \
		"write -P 0x36 5M 4k" &&
	both_same over-qcow2.qed
'

test_expect_success 'need-check set after a crash' '
	qemu-img create -q -f qed crash.qed 4M &&
	qio qed crash.qed "write -P 0x41 0 64k" &&
	qio_crash qed crash.qed "write -P 0x42 1M 64k" "write -z 2M 64k" &&
	test $(img-poke crash.qed 16 read le64) = 2 &&
	both_same crash.qed
'

test_done
