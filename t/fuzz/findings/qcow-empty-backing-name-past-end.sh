#!/bin/sh
# qcow-empty-backing-name-past-end.sh: finding of fuzz-compact (also -r leaks): a qcow whose backing file name is empty (0 bytes) at an offset near the end of the file opened; leak repair and compaction then cut the file shorter, and the image stopped opening ("backing file name at 0x... (0 bytes) runs past end of file").
# usage: qcow-empty-backing-name-past-end.sh SEEDS OUT
#
# leak.qcow has a leaked cluster; its backing file name is pointed 10
# bytes before the end of the file and given 0 bytes. Nothing counts 0
# bytes as used, so truncation is right; the open was wrong to care
# where an empty name lies. Fixed: an empty name means no backing file,
# wherever it is (QEMU reads 0 bytes there too).
cp "$1/leak.qcow" "$2" &&
img-poke "$2" 8 be64 $(($(wc -c <"$2") - 10)) &&
img-poke "$2" 16 be32 0
