#!/bin/sh
# qcow2-l1-past-end-truncated.sh: finding of fuzz-leaks (also -r all): a qcow2 L1 table that starts in the file and runs a cluster or more past its end is, as QEMU counts it, not counted at all; leak repair then took its clusters for free space and cut them off (or punched them), and the guest data it mapped was gone.
# usage: qcow2-l1-past-end-truncated.sh SEEDS OUT
#
# v0.10-c512.qcow2 (512-byte clusters): the first cluster of its L1
# table copied to the end of the file, and the header pointed there with
# 192 entries (1536 bytes, two clusters past the end). The old table is
# now a leak; the new one has no refcount. Fixed: what lies in the file
# of such a table is never reclaimed (struct img_refs.keep_from).
cp "$1/v0.10-c512.qcow2" "$2" &&
size=$(stat -c %s "$2") &&
test $((size % 512)) = 0 &&
l1=$(img-poke "$2" 44 read be32) &&
dd if="$2" bs=512 skip=$((l1 / 512)) count=1 2>/dev/null >"$2.l1" &&
cat "$2.l1" >>"$2" &&
rm -f "$2.l1" &&
img-poke "$2" 40 be64 "$size" &&
img-poke "$2" 36 be32 192
