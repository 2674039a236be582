#!/bin/sh
# 1001-create-qcow-qed.sh: img-create writes qcow and QED images byte for byte as qemu-img create does, and qemu and our readers use them.
test_description='img-create -f qcow and -f qed'
. "$(dirname "$0")/lib.sh"

# same_create NAME ARGS...: qemu-img create and img-create with the same
# arguments (the file name comes first) print the same "Formatting" line
# and write the same bytes.
same_create() {
	same_name_=$1
	shift
	qemu-img create "$@" q-$same_name_ | sed "s/q-$same_name_/X/" >q-$same_name_.out &&
	img-create "$@" m-$same_name_ | sed "s/m-$same_name_/X/" >m-$same_name_.out &&
	test_cmp q-$same_name_.out m-$same_name_.out &&
	cmp q-$same_name_ m-$same_name_
}

# usable FMT IMAGE: qemu writes and reads it back; our readers open it.
usable() {
	qemu-io -f "$1" -c 'write -P 0x5a 0 64k' -c 'read -P 0x5a 0 64k' "$2" >qio.out &&
	grep -q 'read 65536/65536' qio.out &&
	img-info "$2" >/dev/null &&
	img-map "$2" >/dev/null
}

test_expect_success 'setup backing files' '
	truncate -s 3M base.raw &&
	qemu-img create -q -f qcow2 base.qcow2 5M
'

test_expect_success 'qcow, size 512 and odd size 1, same as qemu-img' '
	same_create qcow-512 -f qcow -o size=512 &&
	img-info m-qcow-512 >/dev/null &&
	qemu-img create -q -f qcow q-qcow-1 1 &&
	img-create -q -f qcow m-qcow-1 1 &&
	cmp q-qcow-1 m-qcow-1
'

for size in 1M 1G 100G 4T; do
	test_expect_success "qcow, size $size, same as qemu-img" "
		same_create qcow-$size -f qcow -o size=$size &&
		usable qcow m-qcow-$size
	"
done

test_expect_success 'qcow 1 GiB: 4 KiB clusters, 512-entry L2, 4144 bytes' '
	img-create -q -f qcow layout.qcow 1G &&
	test $(img-poke layout.qcow 32 read u8) = 12 &&
	test $(img-poke layout.qcow 33 read u8) = 9 &&
	test $(img-poke layout.qcow 40 read be64) = 48 &&
	test $(stat -c %s layout.qcow) = 4144
'

test_expect_success 'qcow over a backing file: 512-byte clusters, name at 48' '
	same_create qcow-b -f qcow -b base.raw -F raw &&
	test $(img-poke m-qcow-b 32 read u8) = 9 &&
	test $(img-poke m-qcow-b 33 read u8) = 12 &&
	test $(img-poke m-qcow-b 8 read be64) = 48 &&
	test $(img-poke m-qcow-b 16 read be32) = 8 &&
	test $(img-poke m-qcow-b 40 read be64) = 56 &&
	usable qcow m-qcow-b &&
	img-info m-qcow-b | grep "backing file: base.raw"
'

test_expect_success 'qcow over qcow2 with a larger size' '
	same_create qcow-b2 -f qcow -b base.qcow2 -F qcow2 -o size=9G &&
	usable qcow m-qcow-b2
'

test_expect_success 'qcow: preallocation is accepted and changes nothing' '
	same_create qcow-pf -f qcow -o size=64M,preallocation=full &&
	same_create qcow-pa -f qcow -o size=64M,preallocation=falloc &&
	test $(stat -c %s m-qcow-pf) = 560
'

test_expect_success 'qcow: size 0 refused, no file left' '
	test_expect_code 1 img-create -f qcow zero.qcow 0 2>err &&
	grep "cannot be zero length" err &&
	! test -e zero.qcow
'

test_expect_success 'qcow has no cluster_size option' '
	test_expect_code 2 img-create -f qcow -o cluster_size=4096 c.qcow 1M
'

for cs in 4096 65536 1048576; do
	for ts in 2 4 16; do
		test_expect_success "qed, cluster $cs, table $ts, same as qemu-img" "
			same_create qed-$cs-$ts -f qed -o cluster_size=$cs,table_size=$ts,size=8M &&
			qemu-img check -f qed m-qed-$cs-$ts >/dev/null &&
			usable qed m-qed-$cs-$ts
		"
	done
done

test_expect_success 'qed, 4 MiB clusters' '
	same_create qed-4M -f qed -o cluster_size=4194304,table_size=2,size=1G &&
	usable qed m-qed-4M
'

test_expect_success 'qed, 16 MiB clusters: QEMU limit wraps to 0, only size 0' '
	test_expect_code 1 img-create -f qed -o cluster_size=16M,table_size=2 w.qed 1G &&
	! test -e w.qed &&
	test_must_fail qemu-img create -q -f qed -o cluster_size=16M,table_size=2 w.qed 1G &&
	same_create qed-16M -f qed -o cluster_size=16777216,table_size=2,size=0 &&
	qemu-img check -f qed m-qed-16M >/dev/null
'

for size in 0 512 1G 64T; do
	test_expect_success "qed, size $size, same as qemu-img" "
		same_create qed-$size -f qed -o size=$size &&
		qemu-img check -f qed m-qed-$size >/dev/null
	"
done

test_expect_success 'qed default layout: header cluster, L1 at 64K, 327680 bytes' '
	img-create -q -f qed layout.qed 1G &&
	test $(img-poke layout.qed 4 read le32) = 65536 &&
	test $(img-poke layout.qed 8 read le32) = 4 &&
	test $(img-poke layout.qed 12 read le32) = 1 &&
	test $(img-poke layout.qed 16 read le64) = 0 &&
	test $(img-poke layout.qed 40 read le64) = 65536 &&
	test $(stat -c %s layout.qed) = 327680
'

test_expect_success 'qed over raw: backing and no-probe flags, name at 64' '
	same_create qed-braw -f qed -b base.raw -F raw &&
	test $(img-poke m-qed-braw 16 read le64) = 5 &&
	test $(img-poke m-qed-braw 56 read le32) = 64 &&
	test $(img-poke m-qed-braw 60 read le32) = 8 &&
	qemu-img check -f qed m-qed-braw >/dev/null &&
	usable qed m-qed-braw &&
	img-info m-qed-braw | grep "backing file: base.raw"
'

test_expect_success 'qed over qcow2: backing flag only' '
	same_create qed-bq2 -f qed -b base.qcow2 -F qcow2 -o size=7M &&
	test $(img-poke m-qed-bq2 16 read le64) = 1 &&
	qemu-img check -f qed m-qed-bq2 >/dev/null &&
	usable qed m-qed-bq2
'

test_expect_success 'qed: preallocation is accepted and changes nothing' '
	same_create qed-pf -f qed -o size=64M,preallocation=full &&
	same_create qed-pa -f qed -o size=64M,preallocation=falloc,table_size=2
'

test_expect_success 'qed: table size 1 refused (QEMU cannot open it)' '
	test_expect_code 1 img-create -f qed -o table_size=1 t1.qed 1M 2>err &&
	grep "table size 1" err &&
	! test -e t1.qed
'

test_expect_success 'qed: bad cluster and table sizes refused' '
	test_expect_code 1 img-create -f qed -o cluster_size=3000 c.qed 1M 2>err &&
	grep "cluster size 3000 is not a power of two" err &&
	test_expect_code 1 img-create -f qed -o cluster_size=2k c.qed 1M &&
	test_expect_code 1 img-create -f qed -o cluster_size=128M c.qed 1M &&
	test_expect_code 1 img-create -f qed -o table_size=3 c.qed 1M 2>err &&
	grep "table size 3" err &&
	test_expect_code 1 img-create -f qed -o table_size=32 c.qed 1M &&
	! test -e c.qed
'

test_expect_success 'qed: size beyond what the tables address refused' '
	test_expect_code 1 img-create -f qed -o cluster_size=4k,table_size=2 big.qed 5G 2>err &&
	grep "larger than" err &&
	img-create -q -f qed -o cluster_size=4k,table_size=2 edge.qed 4G &&
	qemu-img check -f qed edge.qed >/dev/null
'

test_done
