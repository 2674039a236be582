#!/bin/sh
# qcow2-empty-backing-name-rebuild.sh: finding of fuzz-all: a qcow2 v2 whose header has a backing name offset but an empty name (no backing file) and an L2 entry naming data past the end of the file (read as zeros): -r all took the entry for one over a backing file and left it, then rebuilt the refcount structures at the end of the file, right where the entry points: the guest range read refcount blocks instead of zeros.
# usage: qcow2-empty-backing-name-rebuild.sh SEEDS OUT
#
# v0.10-c512.qcow2 (v2, 512-byte clusters): backing name offset 0x100,
# length 0; guest cluster 0 pointed one cluster past the end of the
# file; refcount table entry 0 cleared, so that -r all must rebuild.
# Fixed: an empty name means no backing file (the entry is cleared), and
# entries left past the end of the file (v2 over a real backing file)
# keep the rebuilt structures after them.
cp "$1/v0.10-c512.qcow2" "$2" &&
size=$(stat -c %s "$2") &&
img-poke "$2" 8 be64 256 &&
img-poke "$2" 16 be32 0 &&
l1=$(img-poke "$2" 44 read be32) &&
l2=$(img-poke "$2" $((l1 + 4)) read be32) &&
test "$l2" -gt 0 &&
img-poke "$2" "$l2" be32 $((0x80000000)) &&
img-poke "$2" $((l2 + 4)) be32 $(((size + 1023) / 512 * 512)) &&
rt=$(img-poke "$2" 52 read be32) &&
img-poke "$2" $((rt + 4)) be32 0
