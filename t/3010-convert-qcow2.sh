#!/bin/sh
# 3010-convert-qcow2.sh: img-convert -O qcow2 writes images qemu-img check passes and qemu-img compare finds equal to the source: every version, cluster size, refcount width, compression, backing and data files, in place.
test_description='img-convert -O qcow2: new and in-place images, all layouts'
. "$(dirname "$0")/lib.sh"

# good IMAGE SOURCE [FMT]: no errors, no leaks, and the same guest data.
good() {
	qemu-img check "$1" >check.out 2>&1 || { cat check.out; return 1; }
	! grep -i "leak" check.out &&
	qemu-img compare -q ${3:+-f $3} -F qcow2 "$2" "$1"
}

# Data, explicit zeros and holes over 20 MiB, across L2 boundaries for
# small clusters, and the last cluster.
test_expect_success 'setup: sources' '
	qemu-img create -q -f qcow2 src.qcow2 20M &&
	qio qcow2 src.qcow2 "write -P 0x41 0 3M" "write -P 0x42 7M 100k" \
		"write -z 9M 1M" "write -P 0 12M 1M" "write -P 0x43 19M 1M" &&
	qemu-img create -q -f raw old.raw 20M &&
	qio raw old.raw "write -P 0x99 0 20M" &&
	qemu-img create -q -f raw odd.raw 1000000 &&
	qio raw odd.raw "write -P 0x61 0 1000000"
'

for o in compat=0.10 compat=1.1 cluster_size=512 cluster_size=4k \
	 cluster_size=2M extended_l2=on lazy_refcounts=on \
	 refcount_bits=1 refcount_bits=2 refcount_bits=4 refcount_bits=8 \
	 refcount_bits=32 refcount_bits=64 \
	 compat=0.10,cluster_size=512 cluster_size=4k,refcount_bits=1; do
	test_expect_success "new image, $o" "
		img-convert -O qcow2 -o $o src.qcow2 new-$o.qcow2 &&
		good new-$o.qcow2 src.qcow2 &&
		qemu-img info new-$o.qcow2 >info &&
		! grep -i dirty info
	"
	test_expect_success "new image, compressed, $o" "
		img-convert -c -O qcow2 -o $o src.qcow2 c-$o.qcow2 &&
		good c-$o.qcow2 src.qcow2 &&
		qemu-img check c-$o.qcow2 | grep -q '[1-9][0-9.]*% compressed'
	"
done

test_expect_success 'compression_type=zstd with -c' '
	img-convert -c -O qcow2 -o compression_type=zstd src.qcow2 zstd.qcow2 &&
	good zstd.qcow2 src.qcow2 &&
	qemu-img info zstd.qcow2 | grep "compression type: zstd"
'

test_expect_success 'compressed streams share host clusters (refcounts > 1)' '
	img-convert -c -O qcow2 -o cluster_size=4k src.qcow2 share.qcow2 &&
	good share.qcow2 src.qcow2 &&
	test $(stat -c %s share.qcow2) -lt 1048576
'

for o in "" cluster_size=2M compat=0.10,cluster_size=4k preallocation=metadata; do
	test_expect_success "virtual size not a multiple of the cluster size ${o:-default}" "
		img-convert -O qcow2 ${o:+-o $o} odd.raw odd-$o.qcow2 &&
		good odd-$o.qcow2 odd.raw raw &&
		img-convert -c -O qcow2 ${o:+-o $o} odd.raw oddc-$o.qcow2 &&
		good oddc-$o.qcow2 odd.raw raw
	"
done

test_expect_success 'file ends at the last cluster in use' '
	img-convert -O qcow2 src.qcow2 end.qcow2 &&
	qemu-img check end.qcow2 | sed -n "s/^Image end offset: //p" >want &&
	stat -c %s end.qcow2 >have &&
	test_cmp want have
'

test_expect_success 'refcount table grows (1 GiB sparse, 512-byte clusters)' '
	qemu-img create -q -f raw sparse.raw 1G &&
	for i in 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
		qio raw sparse.raw "write -P $((i + 1)) $((i * 64 + 3))M 256k" || return 1
	done &&
	img-convert -O qcow2 -o cluster_size=512,refcount_bits=64 sparse.raw big64.qcow2 &&
	good big64.qcow2 sparse.raw raw &&
	qemu-img info --output=json big64.qcow2 >/dev/null &&
	test $(od -An -tu4 --endian=big -j 56 -N 4 big64.qcow2) -gt 1 &&
	img-convert -O qcow2 -o cluster_size=512,refcount_bits=1 sparse.raw big1.qcow2 &&
	good big1.qcow2 sparse.raw raw &&
	img-convert -c -O qcow2 -o cluster_size=512,refcount_bits=16 sparse.raw bigc.qcow2 &&
	good bigc.qcow2 sparse.raw raw
'

# Refcounts are written block by block as clusters are allocated: many
# blocks per conversion with narrow and wide counts, packed streams too.
test_expect_success 'setup: 24 MiB of data' '
	qemu-img create -q -f raw data24.raw 24M &&
	qio raw data24.raw "write -P 0x31 0 10M" "write -P 0x32 10M 14M" \
		"write -z 15M 1M"
'

for o in refcount_bits=1 refcount_bits=2 refcount_bits=16 refcount_bits=64; do
	test_expect_success "many refcount blocks, 512-byte clusters, $o" "
		img-convert -O qcow2 -o cluster_size=512,$o data24.raw rb-$o.qcow2 &&
		good rb-$o.qcow2 data24.raw raw &&
		img-convert -c -O qcow2 -o cluster_size=512,$o data24.raw rbc-$o.qcow2 &&
		good rbc-$o.qcow2 data24.raw raw
	"
done

test_expect_success 'in place over many compressed clusters (released in batches)' '
	qemu-img create -q -f raw src24.raw 24M &&
	qio raw src24.raw "write -P 0x77 0 8M" "write -z 8M 8M" &&
	qemu-img convert -c -f raw -O qcow2 -o cluster_size=512 data24.raw zb.qcow2 &&
	img-convert -n -O qcow2 src24.raw zb.qcow2 &&
	good zb.qcow2 src24.raw raw &&
	qemu-img convert -c -f raw -O qcow2 -o cluster_size=512,compat=0.10 \
		data24.raw zb10.qcow2 &&
	img-convert -n -O qcow2 src24.raw zb10.qcow2 &&
	good zb10.qcow2 src24.raw raw
'

test_expect_success 'in place, compressed, over compressed data, refcount_bits=2' '
	qemu-img convert -c -f raw -O qcow2 -o cluster_size=512,refcount_bits=2 \
		data24.raw zb2.qcow2 &&
	img-convert -c -n -O qcow2 data24.raw zb2.qcow2 &&
	good zb2.qcow2 data24.raw raw
'

# In place (-n): targets with preallocated metadata, old data, old
# compressed data; zeros must replace what the target had.
for o in preallocation=metadata preallocation=metadata,compat=0.10 \
	 preallocation=falloc,cluster_size=4k preallocation=metadata,extended_l2=on \
	 preallocation=metadata,cluster_size=512,refcount_bits=1 \
	 compat=1.1 compat=0.10 extended_l2=on; do
	test_expect_success "in place, new target, $o" "
		qemu-img create -q -f qcow2 -o $o t-$o.qcow2 20M &&
		img-convert -n -O qcow2 src.qcow2 t-$o.qcow2 &&
		good t-$o.qcow2 src.qcow2
	"
	test_expect_success "in place over old data, $o" "
		qemu-img convert -f raw -O qcow2 -o $o old.raw o-$o.qcow2 &&
		img-convert -n -O qcow2 src.qcow2 o-$o.qcow2 &&
		good o-$o.qcow2 src.qcow2
	"
done

for o in compat=1.1 compat=0.10 extended_l2=on cluster_size=512; do
	test_expect_success "in place over compressed data, $o" "
		qemu-img convert -c -f raw -O qcow2 -o $o old.raw z-$o.qcow2 &&
		img-convert -n -O qcow2 src.qcow2 z-$o.qcow2 &&
		good z-$o.qcow2 src.qcow2 &&
		qemu-img convert -c -f raw -O qcow2 -o $o old.raw zc-$o.qcow2 &&
		img-convert -c -n -O qcow2 src.qcow2 zc-$o.qcow2 &&
		good zc-$o.qcow2 src.qcow2
	"
done

test_expect_success 'in place with --target-is-zero' '
	qemu-img create -q -f qcow2 tiz.qcow2 20M &&
	img-convert -n --target-is-zero -O qcow2 src.qcow2 tiz.qcow2 &&
	good tiz.qcow2 src.qcow2
'

test_expect_success 'setup: a source over a backing file' '
	qemu-img create -q -f qcow2 base.qcow2 20M &&
	qio qcow2 base.qcow2 "write -P 0x55 0 20M" &&
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 over.qcow2 &&
	qio qcow2 over.qcow2 "write -P 0x41 1M 1M" "write -z 4M 1M" \
		"write -z 18M 2M"
'

for o in compat=1.1 compat=0.10 extended_l2=on cluster_size=512; do
	test_expect_success "-B: zeros over backing data, $o" "
		img-convert -O qcow2 -o $o -B base.qcow2 -F qcow2 over.qcow2 b-$o.qcow2 &&
		good b-$o.qcow2 over.qcow2 &&
		img-convert -c -O qcow2 -o $o -B base.qcow2 -F qcow2 over.qcow2 bc-$o.qcow2 &&
		good bc-$o.qcow2 over.qcow2
	"
	test_expect_success "in place into a target with a backing file, $o" "
		qemu-img create -q -f qcow2 -o $o -b base.qcow2 -F qcow2 n-$o.qcow2 &&
		qio qcow2 n-$o.qcow2 'write -P 0x77 0 8M' &&
		img-convert -n -O qcow2 over.qcow2 n-$o.qcow2 &&
		good n-$o.qcow2 over.qcow2
	"
done

for o in data_file=df.data data_file=df.data,data_file_raw=on \
	 data_file=df.data,extended_l2=on data_file=df.data,cluster_size=512; do
	test_expect_success "external data file, $o" "
		rm -f df.qcow2 df.data &&
		img-convert -O qcow2 -o $o src.qcow2 df.qcow2 &&
		good df.qcow2 src.qcow2 &&
		rm -f df.qcow2 df.data &&
		qemu-img create -q -f qcow2 -o $o df.qcow2 20M &&
		qio qcow2 df.qcow2 'write -P 0x77 0 20M' &&
		img-convert -n -O qcow2 src.qcow2 df.qcow2 &&
		good df.qcow2 src.qcow2
	"
done

test_expect_success 'raw external data file reads as the disk' '
	rm -f df.qcow2 df.data &&
	qemu-img create -q -f qcow2 -o data_file=df.data,data_file_raw=on df.qcow2 20M &&
	qio qcow2 df.qcow2 "write -P 0x77 0 20M" &&
	img-convert -n -O qcow2 src.qcow2 df.qcow2 &&
	qemu-img compare -q -f raw -F qcow2 df.data src.qcow2
'

test_expect_success 'no compressed clusters with an external data file' '
	rm -f df.qcow2 df.data &&
	test_must_fail img-convert -c -O qcow2 -o data_file=df.data src.qcow2 df.qcow2 2>err &&
	grep "cannot write compressed clusters .*external data file" err
'

test_expect_success 'in place: images with snapshots or bitmaps are refused' '
	qemu-img create -q -f qcow2 snap.qcow2 20M &&
	qemu-img snapshot -c s1 snap.qcow2 &&
	test_must_fail img-convert -n -O qcow2 src.qcow2 snap.qcow2 2>err &&
	grep "internal snapshot" err &&
	qemu-img create -q -f qcow2 bm.qcow2 20M &&
	qemu-img bitmap --add bm.qcow2 b0 &&
	test_must_fail img-convert -n -O qcow2 src.qcow2 bm.qcow2 2>err &&
	grep "persistent bitmaps" err
'

test_expect_success 'in place: a failed write leaves the image marked dirty; the rerun repairs it first' '
	qemu-img convert -f raw -O qcow2 old.raw dirty.qcow2 &&
	test_expect_code 1 env IMG_FAULT_WRITE=3 \
		img-convert -n -O qcow2 src.qcow2 dirty.qcow2 2>err &&
	od -An -tx1 -j 79 -N 1 dirty.qcow2 | grep -q 01 &&
	img-convert -n -O qcow2 src.qcow2 dirty.qcow2 2>err &&
	grep "^img-convert: .dirty.qcow2. was marked dirty by an interrupted writer: its metadata is repaired$" err &&
	od -An -tx1 -j 79 -N 1 dirty.qcow2 | grep -q 00 &&
	qemu-img check dirty.qcow2 &&
	qemu-img compare -q src.qcow2 dirty.qcow2
'

test_expect_success 'in place: a dirty image whose repair leaves corruption is refused' '
	cp dirty.qcow2 dirty2.qcow2 &&
	img-poke dirty2.qcow2 79 u8 1 &&
	l1=$(img-poke dirty2.qcow2 44 read be32) &&
	l2=$(img-poke dirty2.qcow2 $((l1 + 4)) read be32) &&
	img-poke dirty2.qcow2 $((l1 + 4)) be32 $((l2 + 512)) &&
	test_expect_code 1 img-convert -n -O qcow2 src.qcow2 dirty2.qcow2 2>err &&
	grep "^img-convert: cannot write .dirty2.qcow2.: it is marked dirty and a repair leaves errors (see img-check)$" err &&
	test_expect_code 2 img-check dirty2.qcow2
'

test_done
