#!/bin/sh
# 3000-convert-roundtrip.sh: img-convert from every source format into raw, qcow, qcow2 and QED; qemu-img checks, compares and round-trips the output.
test_description='img-convert: every source format to every output format'
. "$(dirname "$0")/lib.sh"

M=$((1024 * 1024))
SIZE=$((100 * M))
TARGETS='raw qcow qcow2 qed'
PW=secret

# spread_writes FMT IMAGE SIZE: patterns, zero writes over data and into
# holes, explicit zero data, unaligned pieces, the last sector; a few MiB
# over the whole disk.
spread_writes() {
	qio "$1" "$2" "write -P 0x11 0 64k" "write -P 0x12 5000 3000" \
		"write -P 0x13 10M 1M" "write -z 10496k 128k" \
		"write -P 0 20M 256k" "write -P 0x14 $((33 * M + 1000)) 70000" \
		"write -z 50M 1M" "write -P 0x15 64M 2M" \
		"write -P 0x16 99M 512k" "write -P 0x17 $(($3 - 512)) 512"
}

# src_opts IMAGE: img-convert options that open a source of the corpus.
src_opts() {
	case "$1" in
	aes.qcow) echo "--key-file .key" ;;
	esac
}

# vsize FMT IMAGE: the virtual size qemu-img reports.
vsize() {
	qemu-img info --output=json -f "$1" "$2" >info.json &&
	json_get info.json virtual-size | sed 's/^virtual-size=//'
}

# qemu_check FMT IMAGE: qemu-img check finds nothing wrong (exit 0: no
# errors, no leaks) where it applies (qcow2, QED).
qemu_check() {
	case "$1" in
	qcow2|qed) qemu-img check -q -f "$1" "$2" ;;
	esac
}

# compare_src SRC FMT OUT: qemu-img compare says OUT holds SRC's bytes.
compare_src() {
	case "$1" in
	aes.qcow)
		qemu-img compare --object "secret,id=sec0,data=$PW" --image-opts \
			"driver=qcow,file.filename=$1,encrypt.key-secret=sec0" \
			"driver=$2,file.filename=$3" ;;
	*)
		qemu-img compare -f "${1##*.}" -F "$2" "$1" "$3" ;;
	esac
}

# roundtrip SRC FMT: SRC (format named by its extension) to FMT and back;
# every step checked against qemu-img.
roundtrip() {
	rt_src_=$1
	rt_fmt_=$2
	rt_sfmt_=${rt_src_##*.}
	rt_out_=out.$rt_src_.$rt_fmt_
	rt_back_=back.$rt_src_.$rt_fmt_.$rt_sfmt_
	rm -f "$rt_out_" "$rt_back_" back.raw &&
	img-convert $(src_opts "$rt_src_") -O "$rt_fmt_" "$rt_src_" "$rt_out_" &&
	qemu_check "$rt_fmt_" "$rt_out_" &&
	compare_src "$rt_src_" "$rt_fmt_" "$rt_out_" &&
	test "$(vsize "$rt_fmt_" "$rt_out_")" = "$(vsize "$rt_sfmt_" "$rt_src_")" &&
	img-convert -O "$rt_sfmt_" "$rt_out_" "$rt_back_" &&
	qemu_check "$rt_sfmt_" "$rt_back_" &&
	test "$(vsize "$rt_sfmt_" "$rt_back_")" = "$(vsize "$rt_sfmt_" "$rt_src_")" &&
	qemu-img convert -f "$rt_sfmt_" -O raw "$rt_back_" back.raw &&
	cmp "expect.$rt_src_.raw" back.raw &&
	rm -f "$rt_out_" "$rt_back_" back.raw
}

# expect_raw SRC: qemu-img's raw export of SRC, the reference.
expect_raw() {
	case "$1" in
	aes.qcow)
		qemu-img convert --object "secret,id=sec0,data=$PW" --image-opts \
			"driver=qcow,file.filename=$1,encrypt.key-secret=sec0" \
			-O raw "expect.$1.raw" ;;
	*)
		qemu-img convert -f "${1##*.}" -O raw "$1" "expect.$1.raw" ;;
	esac
}

test_expect_success 'corpus: raw' '
	truncate -s $SIZE disk.raw &&
	spread_writes raw disk.raw $SIZE
'

test_expect_success 'corpus: qcow, 100M+512 (not a multiple of the cluster size)' '
	qemu-img create -q -f qcow plain.qcow $((SIZE + 512)) &&
	spread_writes qcow plain.qcow $((SIZE + 512))
'

test_expect_success 'corpus: compressed qcow (qemu-img convert -c)' '
	cp disk.raw comp-src.raw &&
	head -c 100000 /dev/urandom |
		dd of=comp-src.raw bs=1 seek=$((70 * M)) conv=notrunc 2>/dev/null &&
	# QEMU 7.2 exits 1 after writing a good compressed qcow (see t/2001)
	{ qemu-img convert -q -c -f raw -O qcow comp-src.raw comp.qcow; test $? -le 1; } &&
	qemu-img compare -q -f raw -F qcow comp-src.raw comp.qcow &&
	rm comp-src.raw &&
	test $(stat -c %s comp.qcow) -lt $((2 * M))
'

test_expect_success 'corpus: AES-encrypted qcow' '
	qemu-img create -q -f qcow --object secret,id=sec0,data=$PW \
		-o encrypt.format=aes,encrypt.key-secret=sec0 aes.qcow $SIZE &&
	qio_aes qcow aes.qcow $PW "write -P 0x21 0 64k" "write -P 0x22 5000 3000" \
		"write -P 0x23 10M 1M" "write -z 10496k 128k" "write -P 0 20M 256k" \
		"write -P 0x24 64M 2M" "write -P 0x25 $((SIZE - 512)) 512" &&
	write_key .key $PW &&
	qemu-img info -f qcow aes.qcow | grep -q "encrypted: yes"
'

test_expect_success 'corpus: qcow2 v2 (compat=0.10)' '
	qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 $SIZE &&
	spread_writes qcow2 v2.qcow2 $SIZE
'

test_expect_success 'corpus: qcow2 v3, 100M+512, zero and compressed clusters' '
	qemu-img create -q -f qcow2 v3.qcow2 $((SIZE + 512)) &&
	spread_writes qcow2 v3.qcow2 $((SIZE + 512)) &&
	qio qcow2 v3.qcow2 "write -c -P 0x31 40M 64k" "write -c -P 0x32 $((40 * M + 64 * 1024)) 64k" \
		"write -z 64M 64k" &&
	qemu-img map --output=json v3.qcow2 >v3.map &&
	grep -q "\"present\": true, \"zero\": true, \"data\": false" v3.map
'

test_expect_success 'corpus: qcow2 compressed by qemu-img convert -c (zstd, 4k clusters)' '
	qemu-img convert -q -c -f raw -O qcow2 -o compression_type=zstd,cluster_size=4k \
		disk.raw zstd.qcow2
'

test_expect_success 'corpus: qcow2 with extended L2 entries (subclusters)' '
	qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=64k l2.qcow2 $SIZE &&
	spread_writes qcow2 l2.qcow2 $SIZE &&
	qio qcow2 l2.qcow2 "write -P 0x41 $((30 * M + 2 * 1024)) 2k" "write -P 0x42 $((30 * M + 40 * 1024)) 6k" \
		"write -z $((10 * M + 4 * 1024)) 2k" "write -z $((80 * M + 8 * 1024)) 4k" &&
	qemu-img info -f qcow2 l2.qcow2 | grep -q "extended l2: true"
'

test_expect_success 'corpus: QED with zero clusters' '
	qemu-img create -q -f qed z.qed $SIZE &&
	spread_writes qed z.qed $SIZE &&
	qemu-img map --output=json -f qed z.qed >z.map &&
	grep -q "\"present\": true, \"zero\": true, \"data\": false" z.map
'

test_expect_success 'corpus: qcow2 over qcow over raw' '
	truncate -s $SIZE chain-base.raw &&
	qio raw chain-base.raw "write -P 0x51 0 2M" "write -P 0x52 60M 2M" \
		"write -P 0x53 $((SIZE - M)) 1M" &&
	qemu-img create -q -f qcow -b chain-base.raw -F raw chain-mid.qcow $SIZE &&
	qio qcow chain-mid.qcow "write -P 0x54 512k 512k" "write -P 0x55 30M 1M" \
		"write -P 0 $((60 * M + 64 * 1024)) 64k" &&
	qemu-img create -q -f qcow2 -b chain-mid.qcow -F qcow chain-top.qcow2 $SIZE &&
	qio qcow2 chain-top.qcow2 "write -P 0x56 768k 64k" "write -z 1M 128k" \
		"write -z $((30 * M + 512 * 1024)) 512k" "write -P 0x57 61M 4k" "write -P 0x58 90M 1M"
'

test_expect_success 'corpus: QED over qcow2' '
	qemu-img create -q -f qcow2 qbase.qcow2 $SIZE &&
	spread_writes qcow2 qbase.qcow2 $SIZE &&
	qemu-img create -q -f qed -b qbase.qcow2 -F qcow2 chain-top.qed $SIZE &&
	qio qed chain-top.qed "write -P 0x61 $((10 * M + 512 * 1024)) 64k" "write -z 64M 128k" \
		"write -P 0x62 75M 1M" "write -z 99M 64k"
'

SOURCES='disk.raw plain.qcow comp.qcow aes.qcow v2.qcow2 v3.qcow2 zstd.qcow2
	l2.qcow2 z.qed chain-top.qcow2 chain-top.qed'

test_expect_success 'reference raw exports of every source' '
	for s in $SOURCES; do
		expect_raw $s || return 1
	done &&
	test $(stat -c %s expect.plain.qcow.raw) = $((SIZE + 512)) &&
	test $(stat -c %s expect.disk.raw.raw) = $SIZE
'

for s in $SOURCES; do
	for t in $TARGETS; do
		test_expect_success "$s to $t: check, compare, size, back to ${s##*.}" "
			roundtrip $s $t
		"
	done
done

test_expect_success 'a zero-length source converts to raw, qcow2 and QED' '
	qemu-img create -q -f qcow2 empty.qcow2 0 &&
	for t in raw qcow2 qed; do
		rm -f out.$t &&
		img-convert -O $t empty.qcow2 out.$t &&
		qemu_check $t out.$t &&
		test "$(vsize $t out.$t)" = 0 || return 1
	done
'

test_expect_success 'raw preallocation=falloc and full: every block allocated, same bytes' '
	qemu-img create -q -f qcow2 sparse.qcow2 8M &&
	qio qcow2 sparse.qcow2 "write -P 0x42 1M 64k" &&
	qemu-img convert -O raw sparse.qcow2 sparse.ref &&
	for p in falloc full; do
		img-convert -O raw -o preallocation=$p sparse.qcow2 pre.$p &&
		cmp sparse.ref pre.$p &&
		test "$(stat -c %b pre.$p)" -ge $((8 * 2048)) || return 1
	done &&
	img-convert -O raw sparse.qcow2 pre.off &&
	test "$(stat -c %b pre.off)" -lt $((2 * 2048))
'

test_expect_success 'qcow cannot be zero length (as in qemu-img): exit 1, no output' '
	test_expect_code 1 img-convert -O qcow empty.qcow2 out.qcow 2>err &&
	grep "^img-convert: cannot create .out.qcow.: .*zero length" err &&
	! test -e out.qcow &&
	test -z "$(ls -A | grep "^\.out\.qcow\.")"
'

test_done
