#!/bin/sh
# 2002-raw-export-qcow2.sh: qcow2 v2/v3 images of every cluster size, refcount width and compression type export and map as qemu-img does.
test_description='raw export and map of qcow2 images: versions, cluster sizes, compression'
. "$(dirname "$0")/lib.sh"

# varied_writes IMAGE [FMT]: data at aligned and unaligned offsets, across
# an L2 boundary (4 KiB clusters), zeroes, and the last sector.
varied_writes() {
	qio ${2:-qcow2} "$1" "write -P 0x11 0 4k" "write -P 0x12 6000 3000" \
		"write -P 0x13 2040k 16k" "write -z 3M 64k" \
		"write -P 0x14 5M 1M" "write -z 5200k 4k" "write -P 0x15 8388096 512"
}

test_expect_success 'v3 default (64 KiB clusters)' '
	qemu-img create -q -f qcow2 v3.qcow2 8M &&
	varied_writes v3.qcow2 &&
	both_same v3.qcow2 &&
	both_same -f qcow2 v3.qcow2
'

test_expect_success 'empty v3' '
	qemu-img create -q -f qcow2 empty.qcow2 8M &&
	both_same empty.qcow2
'

test_expect_success 'zero-size v3' '
	qemu-img create -q -f qcow2 zero-size.qcow2 0 &&
	both_same zero-size.qcow2
'

test_expect_success 'v2 (compat=0.10)' '
	qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 8M &&
	varied_writes v2.qcow2 &&
	both_same v2.qcow2
'

test_expect_success 'v2 with 512-byte clusters' '
	qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=512 v2-512.qcow2 8M &&
	varied_writes v2-512.qcow2 &&
	both_same v2-512.qcow2
'

for cs in 512 4k 64k 2M; do
	test_expect_success "v3 with cluster size $cs" "
		qemu-img create -q -f qcow2 -o cluster_size=$cs cs-$cs.qcow2 8M &&
		varied_writes cs-$cs.qcow2 &&
		both_same cs-$cs.qcow2
	"
done

test_expect_success 'odd virtual size 1000000' '
	qemu-img create -q -f qcow2 odd.qcow2 1000000 &&
	qio qcow2 odd.qcow2 "write -P 0x21 995000 5448" "write -P 0x22 77 1" &&
	both_same odd.qcow2
'

for bits in 1 64; do
	test_expect_success "refcount_bits=$bits" "
		qemu-img create -q -f qcow2 -o refcount_bits=$bits rc$bits.qcow2 8M &&
		varied_writes rc$bits.qcow2 &&
		both_same rc$bits.qcow2
	"
done

test_expect_success 'make a mixed raw source for compression' '
	truncate -s 6M src.raw &&
	qio raw src.raw "write -P 0x31 0 64k" "write -P 0x32 300k 10k" \
		"write -P 0x33 1M 1M" &&
	head -c 300000 /dev/urandom | dd of=src.raw bs=1 seek=3000000 conv=notrunc 2>/dev/null &&
	head -c 5000 /dev/urandom | dd of=src.raw bs=1 seek=6000000 conv=notrunc 2>/dev/null
'

for ct in zlib zstd; do
	for cs in 4k 64k 2M; do
		test_expect_success "compressed ($ct, cluster size $cs) by convert -c" "
			qemu-img convert -c -O qcow2 -o compression_type=$ct,cluster_size=$cs \
				src.raw c-$ct-$cs.qcow2 &&
			both_same c-$ct-$cs.qcow2
		"
	done
done

test_expect_success 'compressed v2 with 512-byte clusters' '
	qemu-img convert -c -O qcow2 -o compat=0.10,cluster_size=512 src.raw c-v2-512.qcow2 &&
	both_same c-v2-512.qcow2
'

test_expect_success 'compressed writes mixed with plain writes and zeroes (zstd)' '
	qemu-img create -q -f qcow2 -o compression_type=zstd mix.qcow2 4M &&
	qio qcow2 mix.qcow2 "write -c -P 0x41 0 64k" "write -c -P 0x42 64k 64k" \
		"write -P 0x43 128k 64k" "write -c -P 0x44 1M 64k" "write -z 1088k 64k" \
		"write -P 0x45 1100k 100" &&
	both_same mix.qcow2
'

test_expect_success 'compressed zlib clusters overwritten in part' '
	cp c-zlib-64k.qcow2 over.qcow2 &&
	qio qcow2 over.qcow2 "write -P 0x46 1050k 4k" "write -z 0 64k" &&
	both_same over.qcow2
'

test_expect_success 'preallocation=metadata (allocated clusters in file holes)' '
	qemu-img create -q -f qcow2 -o preallocation=metadata pm.qcow2 4M &&
	qio qcow2 pm.qcow2 "write -P 0x51 1M 4k" &&
	both_same pm.qcow2
'

test_expect_success 'preallocated zero clusters (write -z over data)' '
	qemu-img create -q -f qcow2 pz.qcow2 4M &&
	qio qcow2 pz.qcow2 "write -P 0x52 0 1M" "write -z 64k 128k" "write -z -u 512k 64k" &&
	both_same pz.qcow2
'

test_expect_success 'L1 and L2 spread over a larger image' '
	qemu-img create -q -f qcow2 -o cluster_size=4k spread.qcow2 3G &&
	qio qcow2 spread.qcow2 "write -P 0x61 0 4k" "write -P 0x62 1G 12k" \
		"write -P 0x63 2047M 2M" "write -P 0x64 3071M 1M" &&
	map_same spread.qcow2
'

test_done
