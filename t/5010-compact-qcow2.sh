#!/bin/sh
# 5010-compact-qcow2.sh: img-compact on qcow2 images: zero clusters freed with their refcounts, the file shrunk to what qemu-img convert makes, snapshots' clusters kept, backing files, compressed clusters, leaks, every geometry, crash safety at every write.
test_description='img-compact on qcow2 images'
. "$(dirname "$0")/lib.sh"

size_of() {
	stat -c %s "$1"
}
# peer_size RAW OPTS: the size of qemu-img convert's (sparse) qcow2 of RAW.
peer_size() {
	qemu-img convert -O qcow2 -o "$2" "$1" peer.qcow2 && size_of peer.qcow2
}
# full RAW IMG [OPTS]: IMG, a qcow2 with every cluster of RAW stored as
# written data, zeros included (what a guest zero-filling its disk leaves;
# qemu-img convert -S 0 may leave host-file holes instead).
full() {
	qemu-img create -q -f qcow2 -o "${3:-compat=1.1}" "$2" $(size_of "$1") &&
	qio qcow2 "$2" "write -s $1 0 $(size_of "$1")"
}
be64() {
	od -An -tx1 -j "$2" -N 8 "$1" | tr -d ' \n' | sed 's/^/0x/'
}

# a.raw: 40 clusters of 64 KiB, 22 of them zeros, some at the end.
test_expect_success 'setup' '
	zero_fill a.raw dddd0000dd00000000dddd0000dddddddd000000 &&
	full a.raw a.qcow2 &&
	test_expect_code 0 qemu-img check a.qcow2 >/dev/null
'

test_expect_success 'dry run: writes nothing, reports what would be freed' '
	cp --sparse=never a.qcow2 dry.qcow2 &&
	compact_counts dry.qcow2 -n &&
	cmp a.qcow2 dry.qcow2 &&
	cat >want <<-\EOT &&
	clusters-scanned=40
	zero-clusters=22
	clusters-freed=22
	clusters-kept=0
	leaks=0
	bytes-freed=1441792
	EOT
	test_cmp want dry.qcow2.counts
'

test_expect_success 'compact: clean, same data, as small as qemu-img convert makes it' '
	cp --sparse=never a.qcow2 b.qcow2 &&
	compact_counts b.qcow2 &&
	test_cmp dry.qcow2.counts b.qcow2.counts &&
	compact_clean b.qcow2 a.raw &&
	test $(($(size_of a.qcow2) - $(size_of b.qcow2))) = $((22 * 65536)) &&
	test $(size_of b.qcow2) -le $(peer_size a.raw compat=1.1) &&
	json_get b.qcow2.json file-size-before file-size-after format >got &&
	cat >want <<-EOT &&
	file-size-before=$(size_of a.qcow2)
	file-size-after=$(size_of b.qcow2)
	format=qcow2
	EOT
	test_cmp want got
'

# Guest clusters 18-21 and 26-33 fill the holes of 4-7 and 10-17 in
# order: three breaks in the guest order, the fewest filling holes allows.
test_expect_success 'moved data keeps its order' '
	qemu-img check --output=json b.qcow2 >chk.json &&
	json_get chk.json allocated-clusters fragmented-clusters >got &&
	printf "allocated-clusters=18\nfragmented-clusters=3\n" >want &&
	test_cmp want got &&
	qemu-img map --output=json b.qcow2 >map.json &&
	grep -F "\"start\": 1703936, \"length\": 524288, \"depth\": 0, \"present\": true, \"zero\": false, \"data\": true, \"offset\": 983040}" map.json &&
	grep -F "\"start\": 1179648, \"length\": 262144, \"depth\": 0, \"present\": true, \"zero\": false, \"data\": true, \"offset\": 589824}" map.json
'

test_expect_success 'a second run finds nothing to do and writes nothing' '
	cp b.qcow2 b2.qcow2 &&
	img-compact b2.qcow2 >out &&
	cmp b.qcow2 b2.qcow2 &&
	grep -F "Zero clusters found: 0" out
'

# Every geometry: the result is clean, reads the same, and is no larger
# than qemu-img convert's output (a cluster more for 64-bit refcounts,
# whose refcount table qemu-img sizes differently).
for opts in compat=0.10 extended_l2=on refcount_bits=1 refcount_bits=64 \
	cluster_size=4096,refcount_bits=2 cluster_size=512 \
	cluster_size=512,refcount_bits=1 cluster_size=512,refcount_bits=64 \
	cluster_size=2M lazy_refcounts=on; do
	test_expect_success "geometry $opts" '
		full a.raw g.qcow2 $opts &&
		compact_counts g.qcow2 &&
		case $opts in
		cluster_size=2M) zeros=0 slack=0 ;;
		cluster_size=4096*) zeros=$((22 * 16)) slack=0 ;;
		cluster_size=512,refcount_bits=64) zeros=$((22 * 128)) slack=512 ;;
		cluster_size=512*) zeros=$((22 * 128)) slack=0 ;;
		refcount_bits=64) zeros=22 slack=65536 ;;
		*) zeros=22 slack=0 ;;
		esac &&
		grep -Fx "zero-clusters=$zeros" g.qcow2.counts &&
		compact_clean g.qcow2 a.raw &&
		peer=$(peer_size a.raw $opts) &&
		test $(size_of g.qcow2) -le $((peer + slack)) ||
		{ echo >&2 "$opts: $(size_of g.qcow2) > qemu-img convert $peer"; false; }
	'
done

test_expect_success 'v3 over a backing file: zero clusters become zero entries' '
	zero_fill base.raw dddddddd00000000 &&
	qemu-img convert -O qcow2 base.raw base.qcow2 &&
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 1M &&
	qio qcow2 top.qcow2 "write -P 0 0 128k" "write -P 7 192k 64k" \
		"write -P 0 576k 128k" &&
	qemu-img convert -O raw top.qcow2 top.raw &&
	cp top.qcow2 top0.qcow2 &&
	compact_counts top.qcow2 &&
	printf "%s\n" clusters-scanned=5 zero-clusters=4 clusters-freed=4 \
		clusters-kept=0 leaks=0 bytes-freed=262144 >want &&
	test_cmp want top.qcow2.counts &&
	compact_clean top.qcow2 top.raw &&
	qemu-img map --output=json top.qcow2 >map.json &&
	grep "\"start\": 0, \"length\": 131072, \"depth\": 0, .*\"zero\": true" map.json
'

test_expect_success 'v2 over a backing file: zeros over data kept, over zeros freed' '
	qemu-img create -q -f qcow2 -o compat=0.10 -b base.qcow2 -F qcow2 top2.qcow2 1M &&
	qio qcow2 top2.qcow2 "write -P 0 0 128k" "write -P 7 192k 64k" \
		"write -P 0 576k 128k" &&
	cp top2.qcow2 top20.qcow2 &&
	cp top2.qcow2 top2k.qcow2 &&
	compact_counts top2.qcow2 &&
	printf "%s\n" clusters-scanned=5 zero-clusters=4 clusters-freed=2 \
		clusters-kept=2 leaks=0 bytes-freed=131072 >want &&
	test_cmp want top2.qcow2.counts &&
	compact_clean top2.qcow2 top.raw &&
	img-compact top20.qcow2 >out &&
	grep -Fx "Zero clusters kept: 2" out
'

test_expect_success 'snapshots: clusters they share are kept, theirs stay readable' '
	cp --sparse=never a.qcow2 s.qcow2 &&
	qemu-img snapshot -c s1 s.qcow2 &&
	qio qcow2 s.qcow2 "write -P 0 0 128k" "write -P 0x55 256k 64k" &&
	qemu-img convert -O raw s.qcow2 s.raw &&
	compact_counts s.qcow2 &&
	printf "%s\n" clusters-scanned=40 zero-clusters=23 clusters-freed=2 \
		clusters-kept=21 leaks=0 bytes-freed=131072 >want &&
	test_cmp want s.qcow2.counts &&
	compact_clean s.qcow2 s.raw &&
	qemu-img convert -l snapshot.name=s1 -O raw s.qcow2 s1.raw &&
	cmp a.raw s1.raw
'

test_expect_success 'compressed clusters are kept and not read' '
	yes "compressible text" | head -c 1M >ac.raw &&
	head -c 1M /dev/zero >>ac.raw &&
	qemu-img convert -c -O qcow2 ac.raw c.qcow2 &&
	qio qcow2 c.qcow2 "write -P 0 0 64k" "write -P 0 1152k 128k" &&
	qemu-img convert -O raw c.qcow2 c.raw &&
	compact_counts c.qcow2 &&
	printf "%s\n" clusters-scanned=3 zero-clusters=3 clusters-freed=3 \
		clusters-kept=0 leaks=0 >want &&
	sed "/^bytes-freed=/d" c.qcow2.counts >got &&
	test_cmp want got &&
	compact_clean c.qcow2 c.raw &&
	qemu-img check --output=json c.qcow2 >chk.json &&
	json_get chk.json compressed-clusters >got &&
	echo compressed-clusters=15 >want &&
	test_cmp want got
'

test_expect_success 'extended L2: zero subclusters only, allocated or not' '
	qemu-img create -q -f qcow2 -o extended_l2=on x.qcow2 1M &&
	qio qcow2 x.qcow2 "write -P 0 2k 2k" "write -P 0 64k 64k" \
		"write -P 9 130k 2k" "write -P 0 132k 2k" &&
	qemu-img convert -O raw x.qcow2 x.raw &&
	compact_counts x.qcow2 &&
	printf "%s\n" clusters-scanned=3 zero-clusters=2 clusters-freed=2 >want &&
	json_get x.qcow2.json clusters-scanned zero-clusters clusters-freed >got &&
	test_cmp want got &&
	compact_clean x.qcow2 x.raw
'

test_expect_success 'clusters that are holes in the file (metadata preallocation) are freed without reading' '
	qemu-img create -q -f qcow2 -o preallocation=metadata pz.qcow2 1M &&
	qemu-img convert -O raw pz.qcow2 pz.raw &&
	compact_counts pz.qcow2 &&
	printf "%s\n" clusters-scanned=0 zero-clusters=16 clusters-freed=16 >want &&
	json_get pz.qcow2.json clusters-scanned zero-clusters clusters-freed >got &&
	test_cmp want got &&
	compact_clean pz.qcow2 pz.raw &&
	# qemu-img ends its file right after its L1 table, mid-cluster
	test $(size_of pz.qcow2) -le $((($(peer_size pz.raw compat=1.1) + 65535) / 65536 * 65536))
'

test_expect_success 'pre-existing leaks are given back too' '
	cp b.qcow2 leak.qcow2 &&
	end=$(size_of leak.qcow2) &&
	truncate -s $((end + 2 * 65536)) leak.qcow2 &&
	rb=$(($(be64 leak.qcow2 $(($(be64 leak.qcow2 48)))))) &&
	img-poke leak.qcow2 $((rb + 2 * (end / 65536))) be16 1 &&
	img-poke leak.qcow2 $((rb + 2 * (end / 65536 + 1))) be16 1 &&
	test_expect_code 3 qemu-img check leak.qcow2 >/dev/null 2>&1 &&
	compact_counts leak.qcow2 &&
	grep -Fx leaks=2 leak.qcow2.counts &&
	test $(size_of leak.qcow2) = $(size_of b.qcow2) &&
	compact_clean leak.qcow2 a.raw
'

test_expect_success 'refused: an image with errors, encryption, a data file, a bad -S' '
	cp --sparse=never a.qcow2 bad.qcow2 &&
	rb=$(($(be64 bad.qcow2 $(($(be64 bad.qcow2 48)))))) &&
	img-poke bad.qcow2 $((rb + 2 * 5)) be16 0 &&
	cp bad.qcow2 bad.before &&
	test_expect_code 1 img-compact bad.qcow2 2>err &&
	grep -F "repair it first" err &&
	cmp bad.qcow2 bad.before &&
	qemu-img create -q -f qcow2 --object secret,id=sec0,data=pass \
		-o encrypt.format=aes,encrypt.key-secret=sec0 aes.qcow2 1M &&
	test_expect_code 1 img-compact aes.qcow2 2>err &&
	grep -F "encrypted" err &&
	qemu-img create -q -f qcow2 -o data_file=d.data d.qcow2 1M &&
	test_expect_code 1 img-compact d.qcow2 2>err &&
	grep -F "external data file" err &&
	test_expect_code 1 img-compact -S 4k a.qcow2 2>err &&
	grep -F "cluster size, 65536" err
'

test_expect_success 'crash safety: killed at every write, no backing file' '
	zero_fill k.raw dd00d0000d00dd00 &&
	full k.raw k.qcow2 &&
	compact_survives_kills k.qcow2 k.raw
'

test_expect_success 'crash safety: 512-byte clusters (tables, refcount blocks and the refcount table move)' '
	zero_fill k5.raw dd00d0000d00dd00d000000d 8192 &&
	full k5.raw k5.qcow2 cluster_size=512 &&
	compact_survives_kills k5.qcow2 k5.raw
'

test_expect_success 'crash safety: v2 over a backing file' '
	compact_survives_kills top2k.qcow2 top.raw
'

test_expect_success 'crash safety: with a snapshot' '
	cp --sparse=never a.qcow2 ks.qcow2 &&
	qemu-img snapshot -c s1 ks.qcow2 &&
	qio qcow2 ks.qcow2 "write -P 0 0 128k" "write -P 0 640k 64k" &&
	qemu-img convert -O raw ks.qcow2 ks.raw &&
	compact_survives_kills ks.qcow2 ks.raw
'

test_done
