#!/bin/sh
# qcow2-bitmap-dir-past-end.sh: finding of fuzz-compact: a qcow2 whose bitmap directory lies in the partial cluster past the end of the file (tolerated, as by qemu-img) loses it to the truncation of leak repair (-r leaks, -r all) and compaction.
# usage: qcow2-bitmap-dir-past-end.sh SEEDS OUT
#
# bitmaps.qcow2 ends with its bitmap directory at 0x10000 (0x40 bytes);
# cut at 61640 bytes, the directory lies past the end of the file by less
# than a cluster, which counting references tolerates, and the bitmap
# tables read through it became leaks. -r leaks, -r all and img-compact then
# truncated the file to 44 KiB, after which the check reported the
# directory as past the end by a cluster or more (corrupt). Fixed: the
# check validates each directory entry as opening does (zeros are not a
# bitmap), finds the directory corrupt and refuses, as qemu-img does.
cp "$1/bitmaps.qcow2" "$2" &&
truncate -s 61640 "$2"
