#!/bin/sh
# 7020-demote-qcow2.sh: img-demote on qcow2 v3 images: compat 0.10 with zero clusters in the active and snapshot tables, preallocated zero clusters, over a backing file, lazy refcounts with the dirty bit, bitmaps dropped without leaks, --feature, features not supported yet refused, crash safety at every write.
test_description='img-demote on qcow2 images'
. "$(dirname "$0")/lib.sh"
. "$TEST_DIRECTORY/lib-demote.sh"

# snapshot_reads IMG SNAP REF: snapshot SNAP of IMG reads as REF.
snapshot_reads() {
	qemu-img convert -l "snapshot.name=$2" -O raw "$1" snap.raw &&
	cmp "$3" snap.raw
}

# z.qcow2: zero clusters in the active table and in snapshot s1's (a table
# they share, and ones copied since), lazy refcounts.
# over.qcow2: zero clusters over base.qcow2 (data): they must be stored.
# pre.qcow2: metadata preallocation, then zeros written: preallocated zero
# clusters (offset + zero flag), over stale data.
test_expect_success 'setup' '
	qemu-img create -q -f qcow2 base.qcow2 4M &&
	qemu-io -c "write -P 7 0 3M" base.qcow2 >/dev/null &&
	qemu-img create -q -f qcow2 -o lazy_refcounts=on z.qcow2 4M &&
	qemu-io -c "write -P 1 0 1M" -c "write -z 1M 256k" -c "write -P 2 2M 64k" \
		z.qcow2 >/dev/null &&
	qemu-img snapshot -c s1 z.qcow2 &&
	qemu-io -c "write -z 0 128k" -c "write -P 3 3M 64k" -c "write -z 2M 64k" \
		z.qcow2 >/dev/null &&
	qemu-img convert -O raw z.qcow2 z.raw &&
	qemu-img convert -l snapshot.name=s1 -O raw z.qcow2 z.s1.raw &&
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 over.qcow2 &&
	qemu-io -c "write -z 0 128k" -c "write -z -u 1M 64k" -c "write -z 3M 64k" \
		over.qcow2 >/dev/null &&
	qemu-img convert -O raw over.qcow2 over.raw &&
	qemu-img create -q -f qcow2 -o preallocation=metadata pre.qcow2 1M &&
	qemu-io -c "write -P 5 0 1M" -c "write -z 0 256k" pre.qcow2 >/dev/null &&
	qemu-img convert -O raw pre.qcow2 pre.raw &&
	for i in z over pre; do
		test_expect_code 0 qemu-img check $i.qcow2 >/dev/null || return 1
	done
'

test_expect_success '--list: each image its features and costs' '
	demote_features z.qcow2 >got &&
	cat >want <<-\EOT &&
	zero-clusters incompatible removable 11 131072 0
	lazy-refcounts compatible removable 0 8 0
	feature-name-table compatible removable 0 65536 0
	version-3 incompatible removable 0 65536 0
	EOT
	test_cmp want got &&
	demote_features over.qcow2 >got &&
	head -n 1 got >got1 &&
	echo "zero-clusters incompatible removable 4 262144 196608" >want &&
	test_cmp want got1 &&
	img-demote --list over.qcow2 >out &&
	grep -F "1 unallocated, 0 preallocated written as zeros, 3 stored as zero clusters" out &&
	demote_features pre.qcow2 >got &&
	head -n 1 got >got1 &&
	echo "zero-clusters incompatible removable 4 327680 0" >want &&
	test_cmp want got1
'

test_expect_success 'dry run writes nothing' '
	cp over.qcow2 dry.qcow2 &&
	img-demote -n dry.qcow2 >out &&
	cmp over.qcow2 dry.qcow2 &&
	grep "^Would remove zero-clusters" out &&
	grep "^File size: .* (estimate)$" out
'

test_expect_success 'zero clusters in the active and snapshot tables: compat 0.10, clean, same data' '
	cp z.qcow2 d.qcow2 &&
	img-demote d.qcow2 >out &&
	grep "^Version: 1.1 -> 0.10$" out &&
	demoted_clean d.qcow2 z.raw &&
	snapshot_reads d.qcow2 s1 z.s1.raw &&
	qemu-img snapshot -l d.qcow2 | grep " s1 " &&
	test "$(img-poke d.qcow2 4 read be32)" = 2 &&
	test "$(stat -c %s d.qcow2)" -le "$(stat -c %s z.qcow2)"
'

test_expect_success 'over a backing file: zeros stored where it holds data' '
	cp over.qcow2 d2.qcow2 &&
	img-demote d2.qcow2 &&
	demoted_clean d2.qcow2 over.raw &&
	qemu-img convert -O raw d2.qcow2 after.raw &&
	cmp over.raw after.raw &&
	qemu-img info d2.qcow2 | grep "^backing file: base.qcow2$" &&
	qemu-img info d2.qcow2 | grep "^backing file format: qcow2$"
'

test_expect_success 'preallocated zero clusters are written as zeros' '
	cp pre.qcow2 d3.qcow2 &&
	img-demote d3.qcow2 &&
	demoted_clean d3.qcow2 pre.raw &&
	img-convert -O raw d3.qcow2 after3.raw &&
	cmp pre.raw after3.raw
'

test_expect_success 'the result matches what qemu-img amend makes of a copy' '
	cp z.qcow2 amend.qcow2 &&
	qemu-img amend -o compat=0.10 amend.qcow2 &&
	qemu-img compare -q amend.qcow2 d.qcow2 &&
	qemu-img info amend.qcow2 | grep "compat: 0.10"
'

test_expect_success 'lazy refcounts with the dirty bit after a killed qemu-io' '
	qemu-img create -q -f qcow2 -o lazy_refcounts=on dirty.qcow2 4M &&
	qio_crash qcow2 dirty.qcow2 "write -P 9 0 1M" "write -z 1M 128k" &&
	qemu-img info dirty.qcow2 | grep "corrupt: false" &&
	test $(($(img-poke dirty.qcow2 72 read be64) & 1)) = 1 &&
	demote_features dirty.qcow2 >got &&
	head -n 1 got >got1 &&
	echo "dirty incompatible removable 0 8 0" >want &&
	test_cmp want got1 &&
	img-demote dirty.qcow2 >out &&
	grep "^Removed dirty" out &&
	grep "^Removed lazy-refcounts" out &&
	test_expect_code 0 qemu-img check dirty.qcow2 &&
	qemu-io -c "read -P 9 0 1M" -c "read -P 0 1M 128k" dirty.qcow2 >/dev/null
'

test_expect_success 'bitmaps: dropped, named, their clusters freed (no leak)' '
	qemu-img create -q -f qcow2 bm.qcow2 4M &&
	qemu-io -c "write -P 4 0 2M" bm.qcow2 >/dev/null &&
	qemu-img bitmap --add bm.qcow2 b0 &&
	qemu-img bitmap --add -g 128k bm.qcow2 b1 &&
	qemu-io -c "write -P 6 0 64k" bm.qcow2 >/dev/null &&
	qemu-img info bm.qcow2 | grep "name: b1" &&
	qemu-img convert -O raw bm.qcow2 bm.raw &&
	demote_features bm.qcow2 >got &&
	grep "^bitmaps autoclear removable 2 8 0$" got &&
	img-demote --list bm.qcow2 | grep -F "dropped: '\''b0'\'', '\''b1'\''" &&
	img-demote bm.qcow2 >out &&
	grep -F "Removed bitmaps: dropped: '\''b0'\'', '\''b1'\''" out &&
	demoted_clean bm.qcow2 bm.raw &&
	! qemu-img info bm.qcow2 | grep bitmaps
'

test_expect_success '--feature: one feature at a time, the image stays v3' '
	cp z.qcow2 f.qcow2 &&
	img-demote --feature zero-clusters f.qcow2 >out &&
	grep "^Removed zero-clusters" out &&
	demoted_clean f.qcow2 z.raw 1.1 &&
	demote_features f.qcow2 >got &&
	cat >want <<-\EOT &&
	lazy-refcounts compatible removable 0 8 0
	feature-name-table compatible removable 0 65536 0
	version-3 incompatible removable 0 65536 0
	EOT
	test_cmp want got &&
	img-demote --feature lazy-refcounts --feature feature-name-table f.qcow2 &&
	demoted_clean f.qcow2 z.raw 1.1 &&
	demote_features f.qcow2 >got &&
	echo "version-3 incompatible removable 0 65536 0" >want &&
	test_cmp want got &&
	img-demote --feature version-3 f.qcow2 &&
	demoted_clean f.qcow2 z.raw &&
	snapshot_reads f.qcow2 s1 z.s1.raw
'

test_expect_success 'refcount widths 1 and 64: rebuilt at 16 bits, then compat 0.10' '
	for w in 1 64; do
		qemu-img create -q -f qcow2 -o refcount_bits=$w r$w.qcow2 4M &&
		qemu-io -c "write -P 1 0 1M" -c "write -z 1M 256k" r$w.qcow2 >/dev/null &&
		if test $w = 64; then
			qemu-img snapshot -c s r$w.qcow2 &&
			qemu-img convert -l snapshot.name=s -O raw r$w.qcow2 r$w.s.raw
		fi &&
		qemu-io -c "write -P 2 512k 64k" r$w.qcow2 >/dev/null &&
		qemu-img convert -O raw r$w.qcow2 r$w.raw &&
		cp r$w.qcow2 r$w.orig &&
		demote_features r$w.qcow2 >got &&
		grep "^refcount-bits incompatible removable 0 131072 131072$" got &&
		img-demote --list r$w.qcow2 | grep -F "refcount-bits: $w -> 16 bits" &&
		img-demote r$w.qcow2 >out &&
		grep "^Removed refcount-bits" out &&
		demoted_clean r$w.qcow2 r$w.raw || return 1
	done &&
	snapshot_reads r64.qcow2 s r64.s.raw
'

test_expect_success '--feature refcount-bits alone: the image stays v3, at 16 bits' '
	qemu-img create -q -f qcow2 -o refcount_bits=1 w.qcow2 4M &&
	qemu-io -c "write -P 1 0 1M" -c "write -z 1M 64k" w.qcow2 >/dev/null &&
	qemu-img convert -O raw w.qcow2 w.raw &&
	img-demote --feature refcount-bits w.qcow2 &&
	demoted_clean w.qcow2 w.raw 1.1 &&
	qemu-img info w.qcow2 | grep "refcount bits: 16" &&
	demote_features w.qcow2 >got &&
	grep "^zero-clusters" got &&
	! grep "^refcount-bits" got
'

# xl.qcow2: extended L2 entries over base.qcow2 (data): a partly written
# cluster, a partly zeroed one, whole zero clusters with and without
# unmapping, a snapshot sharing tables, then a write copying one.
test_expect_success 'extended L2 tables rewritten as standard ones, partial clusters made whole' '
	qemu-img create -q -f qcow2 -o extended_l2=on -b base.qcow2 -F qcow2 xl.qcow2 &&
	qemu-io -c "write -P 1 0 4k" -c "write -P 2 64k 64k" -c "write -z 128k 8k" \
		-c "write -z 192k 64k" -c "write -z -u 256k 64k" -c "write -z 3M 64k" \
		xl.qcow2 >/dev/null &&
	qemu-img snapshot -c s xl.qcow2 &&
	qemu-io -c "write -P 3 8k 4k" xl.qcow2 >/dev/null &&
	qemu-img convert -O raw xl.qcow2 xl.raw &&
	qemu-img convert -l snapshot.name=s -O raw xl.qcow2 xl.s.raw &&
	cp xl.qcow2 xl.orig &&
	demote_features xl.qcow2 >got &&
	grep "^extended-l2 incompatible removable 8 " got &&
	cp xl.orig am.qcow2 &&
	test_expect_code 1 qemu-img amend -o compat=0.10 am.qcow2 2>amend.err &&
	cat amend.err &&
	img-demote xl.qcow2 >out &&
	grep "^Removed extended-l2: 8 partly allocated clusters written whole" out &&
	demoted_clean xl.qcow2 xl.raw &&
	snapshot_reads xl.qcow2 s xl.s.raw &&
	qemu-img info xl.qcow2 >info &&
	! grep "extended l2" info &&
	qemu-img convert -O raw xl.qcow2 after.raw &&
	cmp xl.raw after.raw
'

test_expect_success '--feature extended-l2 alone: still v3, standard tables' '
	cp xl.orig xf.qcow2 &&
	img-demote --feature extended-l2 xf.qcow2 &&
	demoted_clean xf.qcow2 xl.raw 1.1 &&
	qemu-img info xf.qcow2 | grep "extended l2: false" &&
	snapshot_reads xf.qcow2 s xl.s.raw
'

test_expect_success 'extended L2 without a backing file: unallocated parts read as zeros' '
	qemu-img create -q -f qcow2 -o extended_l2=on xn.qcow2 1M &&
	qemu-io -c "write -P 5 4k 8k" -c "write -z 64k 64k" xn.qcow2 >/dev/null &&
	qemu-img convert -O raw xn.qcow2 xn.raw &&
	img-demote xn.qcow2 &&
	demoted_clean xn.qcow2 xn.raw
'

# df-off.qcow2, df-on.qcow2: external data files (data_file_raw off and
# on), with data, zero clusters and data at host offset 0 of the file.
# With data_file_raw every cluster is allocated (metadata preallocation):
# the holes of the data file are not copied, so both move 4 clusters.
test_expect_success 'external data file: its data moved into the image, the file untouched' '
	for raw in off on; do
		qemu-img create -q -f qcow2 -o data_file=df-$raw.bin,data_file_raw=$raw \
			df-$raw.qcow2 4M &&
		qemu-io -c "write -P 1 0 64k" -c "write -P 2 128k 192k" \
			-c "write -z 64k 64k" -c "write -z 1M 64k" df-$raw.qcow2 >/dev/null &&
		qemu-img convert -O raw df-$raw.qcow2 df-$raw.raw &&
		cp df-$raw.qcow2 df-$raw.orig &&
		cp df-$raw.bin df-$raw.bin.orig &&
		cp df-$raw.qcow2 am.qcow2 &&
		test_expect_code 1 qemu-img amend -o compat=0.10 am.qcow2 2>/dev/null &&
		demote_features df-$raw.qcow2 >got &&
		grep "^external-data-file incompatible removable 4 393216 393216$" got &&
		img-demote df-$raw.qcow2 >out &&
		grep "^Removed external-data-file" out &&
		demoted_clean df-$raw.qcow2 df-$raw.raw &&
		cmp df-$raw.bin df-$raw.bin.orig &&
		qemu-img info df-$raw.qcow2 >info &&
		! grep "data file" info &&
		mv df-$raw.bin df-$raw.bin.away &&
		qemu-img compare -q df-$raw.raw df-$raw.qcow2 &&
		mv df-$raw.bin.away df-$raw.bin || return 1
	done &&
	grep "^raw-data-file autoclear removable" got
'

# zs.qcow2: zstd clusters (one of random bytes, which zlib cannot make
# smaller: stored plain), one shared with a snapshot, zero clusters.
test_expect_success 'zstd clusters recompressed with zlib or stored plain' '
	qemu-img create -q -f qcow2 -o compression_type=zstd zs.qcow2 4M &&
	head -c 65536 /dev/urandom >rnd &&
	qemu-io -c "write -c -P 3 0 64k" -c "write -c -s rnd 64k 64k" \
		-c "write -P 4 128k 64k" -c "write -z 192k 64k" zs.qcow2 >/dev/null &&
	qemu-img snapshot -c s zs.qcow2 &&
	qemu-io -c "write -c -P 9 256k 64k" zs.qcow2 >/dev/null &&
	qemu-img convert -O raw zs.qcow2 zs.raw &&
	qemu-img convert -l snapshot.name=s -O raw zs.qcow2 zs.s.raw &&
	cp zs.qcow2 zs.orig &&
	demote_features zs.qcow2 >got &&
	grep "^zstd incompatible removable 3 196616 196608$" got &&
	cp zs.orig am.qcow2 &&
	test_expect_code 1 qemu-img amend -o compat=0.10 am.qcow2 2>amend.err &&
	cat amend.err &&
	cmp zs.qcow2 zs.orig &&
	img-demote zs.qcow2 >out &&
	grep "^Removed zstd" out &&
	demoted_clean zs.qcow2 zs.raw &&
	snapshot_reads zs.qcow2 s zs.s.raw &&
	qemu-img info zs.qcow2 | grep "compression type: zlib" &&
	qemu-img map --output=json zs.qcow2 >map &&
	grep "\"start\": 65536, .*\"offset\"" map &&
	qemu-img check --output=json zs.qcow2 >chk &&
	json_get chk compressed-clusters >got &&
	echo "compressed-clusters=2" >want &&
	test_cmp want got
'

test_expect_success '--feature zstd alone: still v3, zlib, the same data' '
	cp zs.orig zf.qcow2 &&
	img-demote --feature zstd zf.qcow2 &&
	demoted_clean zf.qcow2 zs.raw 1.1 &&
	qemu-img info zf.qcow2 | grep "compression type: zlib" &&
	demote_features zf.qcow2 >got &&
	grep "^zero-clusters" got &&
	! grep "^zstd" got
'

# all.qcow2: every feature at once that can go together: extended L2,
# zstd clusters, lazy refcounts left dirty by a killed qemu-io, refcount
# width 64, a bitmap, a snapshot, zero clusters, over base.qcow2.
# dfx.qcow2: an external data file with extended L2 tables.
test_expect_success 'all features together: compat 0.10, clean, same data and snapshot' '
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 \
		-o extended_l2=on,compression_type=zstd,lazy_refcounts=on,refcount_bits=64 \
		all.qcow2 &&
	qemu-io -c "write -c -P 3 0 64k" -c "write -P 4 64k 4k" -c "write -z 128k 8k" \
		-c "write -z 192k 64k" -c "write -z 3M 64k" all.qcow2 >/dev/null &&
	qemu-img bitmap --add all.qcow2 b0 &&
	qemu-img snapshot -c s all.qcow2 &&
	qio_crash qcow2 all.qcow2 "write -c -P 5 256k 64k" "write -P 6 68k 4k" &&
	test $(($(img-poke all.qcow2 72 read be64) & 1)) = 1 &&
	qemu-img convert -O raw all.qcow2 all.raw &&
	qemu-img convert -l snapshot.name=s -O raw all.qcow2 all.s.raw &&
	cp all.qcow2 all.orig &&
	demote_features all.qcow2 | cut -d" " -f1-3 >got &&
	cat >want <<-\EOT &&
	dirty incompatible removable
	zstd incompatible removable
	extended-l2 incompatible removable
	refcount-bits incompatible removable
	lazy-refcounts compatible removable
	feature-name-table compatible removable
	bitmaps autoclear removable
	version-3 incompatible removable
	EOT
	test_cmp want got &&
	img-demote all.qcow2 >out &&
	demoted_clean all.qcow2 all.raw &&
	snapshot_reads all.qcow2 s all.s.raw &&
	qemu-img create -q -f qcow2 -o extended_l2=on,data_file=dfx.bin dfx.qcow2 4M &&
	qemu-io -c "write -P 3 0 64k" -c "write -P 4 64k 4k" -c "write -z 128k 64k" \
		dfx.qcow2 >/dev/null &&
	qemu-img convert -O raw dfx.qcow2 dfx.raw &&
	cp dfx.qcow2 dfx.orig &&
	img-demote dfx.qcow2 >out &&
	grep "^Removed extended-l2" out &&
	grep "^Removed external-data-file" out &&
	demoted_clean dfx.qcow2 dfx.raw
'

test_expect_success 'a corrupt image is refused with the advice to repair it' '
	cp z.qcow2 bad.qcow2 &&
	l1=$(img-poke bad.qcow2 40 read be64) &&
	img-poke bad.qcow2 $l1 be64 $((0x8000000000000000 | (1 << 30))) &&
	cp bad.qcow2 bad.orig &&
	test_expect_code 1 img-demote bad.qcow2 2>err &&
	grep -F "img-check -r all" err &&
	cmp bad.orig bad.qcow2
'

test_expect_success 'kill -9 at every write: zero clusters with snapshots' '
	demote_survives_kills z.qcow2 z.raw
'

test_expect_success 'kill -9 at every write: over a backing file' '
	demote_survives_kills over.qcow2 over.raw
'

test_expect_success 'kill -9 at every write: preallocated zero clusters, bitmaps' '
	demote_survives_kills pre.qcow2 pre.raw &&
	qemu-img create -q -f qcow2 bk.qcow2 4M &&
	qemu-io -c "write -P 4 0 1M" -c "write -z 1M 64k" bk.qcow2 >/dev/null &&
	qemu-img bitmap --add bk.qcow2 b0 &&
	qemu-img convert -O raw bk.qcow2 bk.raw &&
	demote_survives_kills bk.qcow2 bk.raw
'

test_expect_success 'kill -9 at every write: refcount width 64 with zero clusters and a snapshot' '
	demote_survives_kills r64.orig r64.raw
'

test_expect_success 'kill -9 at every write: zstd clusters with a snapshot' '
	demote_survives_kills zs.orig zs.raw
'

test_expect_success 'kill -9 at every write: extended L2 with a snapshot, over a backing file' '
	demote_survives_kills xl.orig xl.raw
'

test_expect_success 'kill -9 at every write: external data file' '
	demote_survives_kills df-off.orig df-off.raw &&
	cmp df-off.bin df-off.bin.orig
'

test_expect_success 'kill -9 at every write: all features together' '
	demote_survives_kills all.orig all.raw
'

test_expect_success 'SIGTERM at every write stops at a safe point (all features)' '
	demote_survives_term all.orig all.raw
'

test_done
