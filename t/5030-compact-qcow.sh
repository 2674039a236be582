#!/bin/sh
# 5030-compact-qcow.sh: img-compact on qcow (v1) images: zero clusters freed and the file shrunk to exact sizes, zeros over a backing file kept or freed, compressed clusters kept, leaks, dry run, JSON, -S, encrypted images refused, crash safety at every write.
test_description='img-compact on qcow (v1) images'
. "$(dirname "$0")/lib.sh"

CS=4096 # qemu-img makes qcow clusters of 4 KiB (512 bytes over a backing file)

size_of() {
	stat -c %s "$1"
}
COMPACT_COUNTS='clusters-scanned zero-clusters clusters-freed clusters-kept leaks bytes-freed file-size-after'
# expect_counts IMG SCANNED ZERO FREED KEPT LEAKS BYTES SIZE: IMG.counts
# says so (SIZE: file-size-after).
expect_counts() {
	printf "clusters-scanned=%s\nzero-clusters=%s\nclusters-freed=%s\nclusters-kept=%s\nleaks=%s\nbytes-freed=%s\nfile-size-after=%s\n" \
		"$2" "$3" "$4" "$5" "$6" "$7" "$8" >want &&
	test_cmp want "$1.counts"
}
# data_chunks CHUNKS: how many chunks are data.
data_chunks() {
	printf "%s" "$1" | tr -cd d | wc -c
}
# qcow_of RAW IMG: IMG, a qcow image storing every cluster of RAW.
qcow_of() {
	qemu-img convert -S 0 -f raw -O qcow "$1" "$2"
}
# qcow_c_of RAW IMG: IMG, RAW converted with compression (qemu-img 7 exits
# 1 after writing a compressed qcow image).
qcow_c_of() {
	qemu-img convert -c -f raw -O qcow "$1" "$2" 2>/dev/null
	test $? -le 1 && test_expect_code 0 img-check "$2" >/dev/null
}

# layout NAME CHUNKS: NAME.qcow from 64 KiB chunks (16 clusters each) of
# CHUNKS, compacted to its header cluster, one L2 table and the data
# clusters (the image is at most 2 MiB: one L2 table).
layout() {
	zero_fill "$1.raw" "$2" &&
	qcow_of "$1.raw" "$1.qcow" &&
	test $(size_of "$1.qcow") = $(((2 + 16 * ${#2}) * CS)) &&
	compact_counts "$1.qcow" &&
	compact_clean "$1.qcow" "$1.raw" &&
	# header and L1 in cluster 0, the L2 table (dropped once empty), data
	dc_=$(data_chunks "$2") &&
	test $(size_of "$1.qcow") = $(((1 + (dc_ > 0) + 16 * dc_) * CS)) &&
	grep -Fx "zero-clusters=$((16 * (${#2} - $(data_chunks "$2"))))" \
		"$1.qcow.counts" &&
	grep -Fx "clusters-kept=0" "$1.qcow.counts"
}

test_expect_success 'zeros at the start' '
	layout start 0000dddd
'
test_expect_success 'zeros in the middle' '
	layout middle dd0000dd
'
test_expect_success 'zeros at the end' '
	layout end dddd0000
'
test_expect_success 'zeros interleaved' '
	layout inter d0d0d00dd0
'
test_expect_success 'all zeros: only the header stays, the empty L2 table goes' '
	layout allzero 0000 &&
	test $(size_of allzero.qcow) = $((1 * CS)) &&
	img-info --output=json allzero.qcow >info.json &&
	qemu-img map --output=json allzero.qcow >map.json &&
	grep -F "\"data\": false" map.json &&
	! grep -F "\"data\": true" map.json
'
test_expect_success 'no zeros: nothing to do, nothing written' '
	zero_fill full.raw dddd &&
	qcow_of full.raw full.qcow &&
	cp full.qcow full0.qcow &&
	img-compact full.qcow >out &&
	cmp full0.qcow full.qcow &&
	grep -Fx "Zero clusters found: 0" out
'

test_expect_success 'every other cluster zero' '
	zero_fill odd.raw d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0 $CS &&
	qcow_of odd.raw odd.qcow &&
	compact_counts odd.qcow &&
	compact_clean odd.qcow odd.raw &&
	test $(size_of odd.qcow) = $(((2 + 32) * CS)) &&
	grep -Fx clusters-freed=32 odd.qcow.counts
'

# a.raw: 2.5 MiB, two L2 tables, the second one after the data of the first.
test_expect_success 'two L2 tables: tables move down too' '
	zero_fill a.raw dddd0000dd00000000dddd0000dddddddd000000 &&
	qcow_of a.raw a.qcow &&
	test $(size_of a.qcow) = $(((3 + 640) * CS)) &&
	cp a.qcow b.qcow &&
	compact_counts b.qcow &&
	compact_clean b.qcow a.raw &&
	test $(size_of b.qcow) = $(((3 + 18 * 16) * CS)) &&
	expect_counts b.qcow 640 352 352 0 0 $((352 * CS)) \
		"$(size_of b.qcow)"
'

test_expect_success 'dry run: writes nothing, estimates the real result' '
	cp a.qcow dry.qcow &&
	md5sum <dry.qcow >sum.before &&
	compact_counts dry.qcow -n &&
	img-compact --dry-run dry.qcow >dry.out &&
	md5sum <dry.qcow >sum.after &&
	test_cmp sum.before sum.after &&
	grep -Fx "Dry run: nothing was written." dry.out &&
	test_cmp b.qcow.counts dry.qcow.counts &&
	json_get dry.qcow.json dry-run format cluster-size >got &&
	printf "dry-run=true\nformat=qcow\ncluster-size=4096\n" >want &&
	test_cmp want got
'

test_expect_success 'JSON: every key' '
	sed -n "s/^ *\"\([a-z-]*\)\": .*/\1/p" b.qcow.json >got &&
	cat >want <<-\EOT &&
	filename
	format
	dry-run
	cluster-size
	clusters-scanned
	zero-clusters
	clusters-freed
	clusters-kept
	leaks
	bytes-freed
	file-size-before
	file-size-after
	file-size-peak
	EOT
	test_cmp want got &&
	json_get b.qcow.json file-size-before >got &&
	echo "file-size-before=$(size_of a.qcow)" >want &&
	test_cmp want got &&
	peak=$(json_get b.qcow.json file-size-peak | sed "s/.*=//") &&
	test "$peak" -ge $(size_of a.qcow)
'

test_expect_success 'a second run finds nothing to do and writes nothing' '
	cp b.qcow b2.qcow &&
	img-compact b2.qcow >out &&
	cmp b.qcow b2.qcow &&
	grep -Fx "Zero clusters found: 0" out
'

# top.qcow (512-byte clusters) over base.qcow, whose second half is zeros:
# zeros over data at 0..128k (256 clusters) must stay stored, zeros over
# zeros at 256k..448k (384 clusters) may go.
test_expect_success 'backing file: zeros over data kept, zeros over zeros freed' '
	zero_fill base.raw dddd0000 &&
	qcow_of base.raw base.qcow &&
	qemu-img create -q -f qcow -b base.qcow -F qcow top.qcow 512k &&
	qemu-io -f qcow -c "write -P 0 0 128k" -c "write -P 7 128k 64k" \
		-c "write -P 0 256k 192k" top.qcow >/dev/null &&
	qemu-img convert -O raw top.qcow top.raw &&
	cp top.qcow top0.qcow &&
	compact_counts top.qcow -n &&
	cmp top0.qcow top.qcow &&
	mv top.qcow.counts dry.counts &&
	compact_counts top.qcow &&
	test_cmp dry.counts top.qcow.counts &&
	expect_counts top.qcow 768 640 384 256 0 $((384 * 512)) \
		$(($(size_of top0.qcow) - 384 * 512)) &&
	compact_clean top.qcow top.raw &&
	qemu-img map --output=json top.qcow >map.json &&
	grep "\"start\": 0, \"length\": 196608, \"depth\": 0, .*\"data\": true" map.json &&
	img-compact top0.qcow >out &&
	grep -Fx "Zero clusters kept: 256" out
'

test_expect_success 'backing file missing: refused, nothing written' '
	mkdir lone &&
	cp top0.qcow lone/top.qcow &&
	cp lone/top.qcow lone/top1.qcow &&
	test_expect_code 1 img-compact lone/top.qcow 2>err &&
	grep -F "base.qcow" err &&
	cmp lone/top1.qcow lone/top.qcow
'

# cz.qcow: plain random clusters, compressed ones, plain random ones; the
# first plain ones are then overwritten with zeros in the file. They go,
# the last plain ones move down into them, the compressed ones stay.
test_expect_success 'compressed clusters: kept as they are, not read' '
	head -c 65536 /dev/urandom >cz.raw &&
	yes compressible | head -c 65536 >>cz.raw &&
	head -c 65536 /dev/urandom >>cz.raw &&
	qcow_c_of cz.raw cz.qcow &&
	qemu-img map --output=json cz.qcow >map.json &&
	grep -F "\"start\": 0, \"length\": 65536, \"depth\": 0, \"present\": true, \"zero\": false, \"data\": true, \"offset\": 8192}" map.json &&
	grep -F "\"start\": 131072, \"length\": 65536, \"depth\": 0, \"present\": true, \"zero\": false, \"data\": true, \"offset\": 81920}" map.json &&
	test $(size_of cz.qcow) = $((36 * CS)) &&
	dd if=/dev/zero of=cz.qcow bs=$CS seek=2 count=16 conv=notrunc 2>/dev/null &&
	qemu-img convert -O raw cz.qcow cz0.raw &&
	cp cz.qcow cz0.qcow &&
	img-check cz.qcow >before &&
	grep -F "48/48 = 100.00% allocated, 35.42% fragmented, 33.33% compressed" before &&
	compact_counts cz.qcow &&
	compact_clean cz.qcow cz0.raw &&
	img-check cz.qcow >after &&
	grep "^32/48 = 66.67% allocated, .* 50.00% compressed" after &&
	expect_counts cz.qcow 32 16 16 0 0 $((16 * CS)) \
		"$((20 * CS))"
'

# Compressed streams at the end of the file cannot move: the zero
# clusters below them are punched out, the file keeps its size.
test_expect_success 'compressed clusters at the end: the space is punched' '
	head -c 65536 /dev/urandom >ce.raw &&
	yes compressible | head -c 65536 >>ce.raw &&
	qcow_c_of ce.raw ce.qcow &&
	dd if=/dev/zero of=ce.qcow bs=$CS seek=2 count=16 conv=notrunc 2>/dev/null &&
	qemu-img convert -O raw ce.qcow ce0.raw &&
	cp ce.qcow ce0.qcow &&
	compact_counts ce.qcow &&
	compact_clean ce.qcow ce0.raw &&
	test $(size_of ce.qcow) = $(size_of ce0.qcow) &&
	grep -Fx clusters-freed=16 ce.qcow.counts
'

# The estimate is the size before less the bytes freed (lib/compact.c),
# but punched bytes do not make the file shorter.
test_expect_failure 'dry run estimate with compressed clusters at the end' '
	cp ce0.qcow ce1.qcow &&
	compact_counts ce1.qcow -n &&
	test_cmp ce.qcow.counts ce1.qcow.counts
'

test_expect_success 'leaks: appended garbage is given back' '
	cp b.qcow leak.qcow &&
	head -c $((3 * CS)) /dev/urandom >>leak.qcow &&
	test_expect_code 3 img-check leak.qcow >/dev/null 2>&1 &&
	compact_counts leak.qcow -n &&
	mv leak.qcow.counts dry.counts &&
	compact_counts leak.qcow &&
	test_cmp dry.counts leak.qcow.counts &&
	grep -Fx leaks=3 leak.qcow.counts &&
	grep -Fx bytes-freed=$((3 * CS)) leak.qcow.counts &&
	test $(size_of leak.qcow) = $(size_of b.qcow) &&
	compact_clean leak.qcow a.raw
'

# The L2 table of full.qcow is cluster 1; its entry 5 is cleared, so the
# data cluster it pointed to is referenced by nothing.
test_expect_success 'leaks: an unreferenced cluster inside the file' '
	cp full0.qcow hole.qcow &&
	dd if=/dev/zero of=hole.qcow bs=8 seek=$((CS / 8 + 5)) count=1 conv=notrunc 2>/dev/null &&
	qemu-img convert -O raw hole.qcow hole.raw &&
	test_expect_code 3 img-check hole.qcow >/dev/null 2>&1 &&
	compact_counts hole.qcow &&
	grep -Fx leaks=1 hole.qcow.counts &&
	grep -Fx zero-clusters=0 hole.qcow.counts &&
	test $(size_of hole.qcow) = $(($(size_of full0.qcow) - CS)) &&
	compact_clean hole.qcow hole.raw
'

test_expect_success '-S: the cluster size or nothing' '
	cp a.qcow s.qcow &&
	img-compact -n -S 4k s.qcow >/dev/null &&
	test_expect_code 1 img-compact -S 64k s.qcow 2>err &&
	grep -F "is its cluster size, 4096" err &&
	cmp a.qcow s.qcow &&
	qemu-img convert -O qed a.raw s.qed &&
	img-compact -n -S 64k s.qed >/dev/null &&
	test_expect_code 1 img-compact -n -S 4k s.qed 2>err &&
	grep -F "is its cluster size, 65536" err
'

test_expect_success 'AES-encrypted qcow: refused, nothing written' '
	qemu-img create -q -f qcow --object secret,id=sec0,data=secret \
		-o encrypt.format=aes,encrypt.key-secret=sec0 aes.qcow 1M &&
	qio_aes qcow aes.qcow secret "write -P 0 0 64k" "write -P 0x61 64k 64k" &&
	cp aes.qcow aes0.qcow &&
	test_expect_code 1 img-compact aes.qcow 2>err &&
	grep -F "compacting encrypted images is not supported" err &&
	test_expect_code 1 img-compact -n aes.qcow 2>err &&
	grep -F "compacting encrypted images is not supported" err &&
	cmp aes0.qcow aes.qcow
'

# kills_same_size IMAGE: compact_survives_kills proves a rerun after each
# kill leaves a clean image; here it must be exactly as small as an
# uninterrupted run leaves it.
kills_same_size() {
	cp "$1" whole.img && img-compact -q whole.img || return 1
	kss_n_=1
	while cp "$1" kill.img; do
		IMG_FAULT_WRITE=$kss_n_ IMG_FAULT_MODE=kill \
			img-compact -q kill.img 2>/dev/null
		test $? = 137 || return 0
		img-compact -q kill.img &&
		test $(size_of kill.img) = $(size_of whole.img) ||
			{ echo >&2 "killed at write $kss_n_: a rerun leaves $(size_of kill.img) bytes, not $(size_of whole.img)"; return 1; }
		kss_n_=$((kss_n_ + 1))
	done
	return 1
}

test_expect_success 'crash safety: killed at every write, no backing file' '
	zero_fill k.raw dd00d0000d00dd00 8192 &&
	qcow_of k.raw k.qcow &&
	compact_survives_kills k.qcow k.raw &&
	kills_same_size k.qcow
'

test_expect_success 'crash safety: killed at every write, over a backing file' '
	zero_fill kb.raw dddd0000 4096 &&
	qcow_of kb.raw kb.qcow &&
	qemu-img create -q -f qcow -b kb.qcow -F qcow kt.qcow 32k &&
	qemu-io -f qcow -c "write -P 0 0 4k" -c "write -P 9 4k 2k" \
		-c "write -P 0 16k 8k" -c "write -P 5 28k 4k" kt.qcow >/dev/null &&
	qemu-img convert -O raw kt.qcow kt.raw &&
	compact_survives_kills kt.qcow kt.raw &&
	kills_same_size kt.qcow
'

test_expect_success 'crash safety: killed at every write, compressed clusters' '
	compact_survives_kills cz0.qcow cz0.raw &&
	kills_same_size cz0.qcow
'

test_done
