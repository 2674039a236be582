#!/bin/sh
# qcow-l1-at-end-inner-leaks.sh: finding of fuzz-compact: a qcow whose L1 table lies, misaligned, at the end of the file behind leaked clusters; nothing can move into the leaks, so compaction punches holes, which the in-memory backend could not do: "compacted", yet a fresh check found the leaks.
# usage: qcow-l1-at-end-inner-leaks.sh SEEDS OUT
#
# plain.qcow gets three clusters of non-zero bytes appended (leaks), then
# a cluster holding a copy of its L1 table at offset 0x86, which the
# header then names. Fixed in the library's memory backend, which is now
# sparse as a file is: blocks are data or holes, punching makes holes,
# SEEK_DATA finds them, and an image opened from memory is sparse where
# it is zero (as cp --sparse=always makes a file).
cp "$1/plain.qcow" "$2" &&
n=$(wc -c <"$2") &&
l1=$(img-poke "$2" 40 read be64) &&
e=$(img-poke "$2" "$l1" read be64) &&
for i in 0 1 2; do
	printf 'leaked cluster %s' $i |
		dd of="$2" bs=1 seek=$((n + i * 4096)) conv=notrunc 2>/dev/null ||
		exit 1
done &&
truncate -s $((n + 4 * 4096)) "$2" &&
img-poke "$2" $((n + 3 * 4096 + 0x86)) be64 "$e" &&
img-poke "$2" 40 be64 $((n + 3 * 4096 + 0x86))
