#!/bin/sh
# qcow2-bitmap-dir-past-end.sh: finding of fuzz-compact: a qcow2 whose bitmap directory lies in the partial cluster past the end of the file (tolerated, as by qemu-img) loses it to the truncation of leak repair (-r leaks, -r all) and compaction.
# open: leaks all compact
# usage: qcow2-bitmap-dir-past-end.sh SEEDS OUT
#
# bitmaps.qcow2 ends with its bitmap directory at 0x10000 (0x40 bytes);
# cut at 61640 bytes, the directory lies past the end of the file by less
# than a cluster, which counting references tolerates, and the bitmap
# tables read through it become leaks. -r leaks, -r all and img-compact then
# truncate the file to 44 KiB, after which the check reports the
# directory as past the end by a cluster or more (corrupt).
cp "$1/bitmaps.qcow2" "$2" &&
truncate -s 61640 "$2"
