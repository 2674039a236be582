#!/bin/sh
# qcow-partial-cluster-leak.sh: finding of fuzz-leaks (fixed): a qcow whose last data cluster is cut short by the end of the file was both an error and a leak to img-check, and -r leaks truncated it away while readers still read its first half.
# usage: qcow-partial-cluster-leak.sh SEEDS OUT
#
# plain.qcow (4 KiB clusters) ends with the data cluster of guest
# 0x3f000 at 0x7000; cut 2 KiB short, img-check reports "ERROR data
# cluster at 0x7000 for guest offset 0x3f000: offset beyond end of file"
# and "Leaked cluster 7": the entry was not counted as a reference.
# img_read (as qemu-io) reads the 2 KiB that are there; -r leaks then
# truncated the "leak" and guest 0x3f000 read zeros. -r all clears the
# entry and says the range lost its data, which is right. Fixed in
# qcow_check.c: the part of such a cluster that lies in the file counts as
# referenced (and stays in place) unless the entry is cleared.
cp "$1/plain.qcow" "$2" &&
truncate -s $((32768 - 2048)) "$2"
