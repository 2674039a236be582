#!/bin/sh
# qcow2-snapshot-table-past-end.sh: finding of fuzz-compact (also -r leaks, -r all): a qcow2 v2 whose snapshot table lies just past the end of the file (tolerated: it reads as zeros, as for qemu-img) had its leaks cut off by truncation, which put the table a cluster or more past the end: a clean image became corrupt.
# usage: qcow2-snapshot-table-past-end.sh SEEDS OUT
#
# snap-v2.qcow2 (4 KiB clusters) has its snapshot table at 0xc000; cut
# at 48668 bytes (0xbe1c) the table starts past the end of the file but
# ends less than a cluster beyond it. With the active L1 entry cleared,
# clusters 4..11 (the L2 table and data only the snapshot used before,
# now unreferenced) are leaks, and truncating them left the table at
# 0xc000 in a file 16 KiB long. Fixed: clusters counted past the end of
# the file pin it; the leaks become holes instead.
cp "$1/snap-v2.qcow2" "$2" &&
truncate -s 48668 "$2" &&
img-poke "$2" "$(img-poke "$2" 40 read be64)" be64 0
