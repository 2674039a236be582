#!/bin/sh
# qcow2-l2-past-size-compact.sh: finding of fuzz-compact (fixed by e835d82, entries past the virtual size): compaction of a clean qcow2 whose last L2 table and its data lie past the virtual size (L1 table longer than the disk needs) left those clusters leaked.
# usage: qcow2-l2-past-size-compact.sh SEEDS OUT
#
# refbits32.qcow2 (512-byte clusters, 32 KiB per L2 table, data at
# 250 KiB) with its virtual size lowered to 192 KiB: the L1 table keeps 8
# entries, and the 7th names a table and 12 data clusters past the disk.
# qemu-img check and img-check call it clean; after img-compact (exit 0)
# both report 12 leaked clusters (refcount 1, no reference). Of the
# family of the known bug "clusters named by table entries outside the
# virtual size" (compaction).
cp "$1/refbits32.qcow2" "$2" &&
img-poke "$2" 24 be64 0x30000
