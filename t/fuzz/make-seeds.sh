#!/bin/sh
# make-seeds.sh: writes the fuzzers' seed corpus, tiny qemu-made images of every format and feature, into DIR.
#
# usage: t/fuzz/make-seeds.sh DIR
# Needs qemu-img and qemu-io, and t/helper/img-walk and img-poke built
# (make). Images are a few hundred KiB of virtual disk with 512-byte to
# 16 KiB clusters, so that one fuzzer run costs little.
set -e
dir=${1:?usage: make-seeds.sh DIR}
top=$(cd "$(dirname "$0")/../.." && pwd)
PATH=$top/t/helper:$PATH
mkdir -p "$dir"
cd "$dir"
rm -f ./*.qcow2 ./*.qed ./*.qcow ./*.raw ./*.tmp ./*.gz ./*.xz ./*.zst ./*.bz2 \
	./*.lz4 ./*.tar ./*.zip ./*.cpio ./*.7z ./*.add-cow

mk() {   # mk FMT NAME SIZE [OPTIONS]
	qemu-img create -q -f "$1" ${4:+-o "$4"} "$2" "$3"
}
io() {   # io FMT NAME 'command'...
	io_fmt=$1 io_img=$2
	shift 2
	for c in "$@"; do
		set -- "$@" -c "$c"
		shift
	done
	qemu-io -f "$io_fmt" "$@" "$io_img" >/dev/null
}
crash() {   # crash FMT NAME 'command'...: the commands, then a crash
	( ulimit -c 0; io "$@" abort 2>/dev/null ) || test $? -gt 128
}
# unlink_entry NAME GUEST CLUSTER ENDIAN: zero the L2 entry of guest
# offset GUEST (in the first L2 table, found with img-walk), leaking the
# cluster it named.
unlink_entry() {
	ue_tab=$(img-walk "$1" | awk '$1 == "table" { print $3; exit }')
	img-walk "$1" | grep -q "^$2 data "
	img-poke "$1" $((ue_tab + 8 * $2 / $3)) "${4}64" 0
}
# Data, a zero run and a partial cluster, written the same way everywhere.
fill() {   # fill FMT NAME
	io "$1" "$2" 'write -P 0x11 0 8k' 'write -P 0x22 20k 1k' \
		'write -P 0x33 100k 512' 'write -P 0x44 250k 6k'
}

# ---- raw --------------------------------------------------------------
mk raw plain.raw 64k
io raw plain.raw 'write -P 0x5a 0 4k'

# ---- qcow2 ------------------------------------------------------------
for v in 0.10 1.1; do
	for cs in 512 4096; do
		n=v$v-c$cs.qcow2
		mk qcow2 "$n" 256k "compat=$v,cluster_size=$cs"
		fill qcow2 "$n"
		io qcow2 "$n" 'write -z 8k 8k' 'discard 20k 512'
	done
done
mk qcow2 zstd.qcow2 256k compat=1.1,cluster_size=4096,compression_type=zstd
io qcow2 zstd.qcow2 'write -c -P 0x66 0 8k' 'write -c -P 0 16k 4k' \
	'write -P 0x67 32k 4k'
mk qcow2 zlib.qcow2 256k compat=1.1,cluster_size=512
io qcow2 zlib.qcow2 'write -c -P 0x68 0 4k' 'write -P 0x69 8k 1k'
mk qcow2 zlib-v2.qcow2 256k compat=0.10,cluster_size=4096
io qcow2 zlib-v2.qcow2 'write -c -P 0x6a 0 8k' 'write -P 0x6b 64k 4k'
mk qcow2 extl2.qcow2 256k compat=1.1,cluster_size=16k,extended_l2=on
io qcow2 extl2.qcow2 'write -P 0x71 0 1k' 'write -z 2k 1k' \
	'write -P 0x72 16k 16k' 'write -z 64k 16k' 'write -P 0x73 70k 512'
for rb in 1 2 4 8 32 64; do
	mk qcow2 refbits$rb.qcow2 256k "cluster_size=512,refcount_bits=$rb"
	fill qcow2 refbits$rb.qcow2
done
mk qcow2 snap.qcow2 256k cluster_size=512
fill qcow2 snap.qcow2
qemu-img snapshot -c one snap.qcow2
io qcow2 snap.qcow2 'write -P 0x81 0 2k' 'write -z 100k 512'
qemu-img snapshot -c two snap.qcow2
io qcow2 snap.qcow2 'write -P 0x82 4k 1k'
mk qcow2 snap-v2.qcow2 256k compat=0.10,cluster_size=4096
fill qcow2 snap-v2.qcow2
qemu-img snapshot -c one snap-v2.qcow2
io qcow2 snap-v2.qcow2 'write -P 0x83 0 4k'
mk qcow2 bitmaps.qcow2 256k cluster_size=4096
fill qcow2 bitmaps.qcow2
qemu-img bitmap --add bitmaps.qcow2 b0
qemu-img bitmap --add -g 64k bitmaps.qcow2 b1
qemu-img bitmap --disable bitmaps.qcow2 b1
mk qcow2 leak.qcow2 256k cluster_size=512
fill qcow2 leak.qcow2
unlink_entry leak.qcow2 512 512 be
mk qcow2 lazy.qcow2 256k cluster_size=512,lazy_refcounts=on
crash qcow2 lazy.qcow2 'write -P 0x91 0 2k' 'write -P 0x92 64k 1k'
mk qcow2 prealloc.qcow2 64k cluster_size=512,preallocation=metadata
io qcow2 prealloc.qcow2 'write -P 0x93 1k 1k'
mk raw base.tmp 256k
io raw base.tmp 'write -P 0xb0 0 256k'
mk qcow2 backing-v3.qcow2 256k \
	backing_file=base.tmp,backing_fmt=raw,cluster_size=512
io qcow2 backing-v3.qcow2 'write -P 0xb1 0 1k' 'write -z 4k 4k'
mk qcow2 backing-v2.qcow2 256k \
	compat=0.10,backing_file=base.tmp,backing_fmt=raw,cluster_size=4096
io qcow2 backing-v2.qcow2 'write -P 0xb2 0 4k' 'write -P 0 8k 4k'

# ---- QED --------------------------------------------------------------
mk qed c4k.qed 256k cluster_size=4096,table_size=2
fill qed c4k.qed
io qed c4k.qed 'write -z 64k 8k'
mk qed t4.qed 512k cluster_size=4096,table_size=4
io qed t4.qed 'write -P 0xc1 0 4k' 'write -P 0xc2 300k 8k'
cp c4k.qed need-check.qed
crash qed need-check.qed 'write -P 0xc3 128k 4k'
cp c4k.qed leak.qed
unlink_entry leak.qed 4096 4096 le
mk qed backing.qed 256k backing_file=base.tmp,backing_fmt=raw,cluster_size=4096
io qed backing.qed 'write -P 0xc4 0 4k' 'write -z 8k 4k'

# ---- qcow (v1) --------------------------------------------------------
mk qcow plain.qcow 256k
fill qcow plain.qcow
mk qcow compressed.qcow 256k
io qcow compressed.qcow 'write -c -P 0xd1 0 4k' 'write -c -P 0xd4 4k 4k' 'write -P 0xd2 16k 4k'
cp plain.qcow leak.qcow
unlink_entry leak.qcow 4096 4096 be
mk qcow backing.qcow 256k backing_file=base.tmp,backing_fmt=raw
io qcow backing.qcow 'write -P 0xd3 0 4k'

# ---- add-cow ------------------------------------------------------------
# Built byte by byte (the layout of lib/addcow.h): in memory the fuzzers
# never open the image file, so the bitmap alone sets the disk's size.
# addcow NAME BITS HEADER_SIZE BACKING BITMAP-HEX [FEATURES]
addcow() {
	python3 -c '
import struct, sys
name, bits, hs, back, bm = sys.argv[1:6]
feat = int(sys.argv[6], 0) if len(sys.argv) > 6 else 0
hs, img, back = int(hs), b"disk.raw", back.encode()
h = bytearray(hs)
h[0:8] = b"ADD_COW\xff"
struct.pack_into("<IIIIQQII", h, 8, 80 + len(img) if back else 0, len(back),
                 80, len(img), feat, 0, int(bits), hs)
h[48:48 + len(back and b"raw")] = back and b"raw"
h[64:67] = b"raw"
h[80:80 + len(img)] = img
h[88:88 + len(back)] = back
open(name, "wb").write(h + bytes.fromhex(bm))' "$@"
}
addcow plain.add-cow 12 4096 "" 0f0155aa
addcow c512.add-cow 9 512 "" ff00f00f0102040880
addcow backing.add-cow 12 4096 base.raw 01ff00
addcow stray.add-cow 16 128 "" 0380
addcow feature.add-cow 12 256 "" ff 1

# ---- compressed files and archives (the stream target) ------------------
gzip -c plain.raw >plain.raw.gz
xz -c plain.raw >plain.raw.xz
zstd -q -c plain.raw >plain.raw.zst
bzip2 -c plain.raw >plain.raw.bz2
lz4 -q -c plain.raw >plain.raw.lz4
cp plain.raw disk.img.tmp
qemu-img create -q -f raw hole.tmp 1M
qemu-io -f raw -c 'write -P 0x7e 512k 4k' hole.tmp >/dev/null
mkdir -p pack.tmp && cp plain.raw pack.tmp/disk.img && cp hole.tmp pack.tmp/hole.img
(cd pack.tmp && tar --sparse -cf ../two.tar disk.img hole.img &&
	zip -q ../two.zip disk.img hole.img &&
	printf 'disk.img\nhole.img\n' | cpio -o -H newc --quiet >../two.cpio &&
	7z a -bd -bso0 ../two.7z disk.img >/dev/null)
gzip -c two.tar >two.tar.gz
rm -rf pack.tmp disk.img.tmp hole.tmp

rm -f base.tmp
