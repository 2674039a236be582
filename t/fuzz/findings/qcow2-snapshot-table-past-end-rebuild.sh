#!/bin/sh
# qcow2-snapshot-table-past-end-rebuild.sh: finding of fuzz-all: a qcow2 snapshot table running a cluster or more past the end of the file (uncounted, read as zeros there) got the refcount structures of a -r all rebuild written over its part past the end; its entries then read them, and the image no longer opened.
# usage: qcow2-snapshot-table-past-end-rebuild.sh SEEDS OUT
#
# v0.10-c4096.qcow2 (4 KiB clusters): a zero cluster appended, the header's
# snapshot table moved there with 300 entries (all-zero ones, 40 bytes
# each: 12000 bytes, two clusters past the end), and the refcount of the
# active L2 table zeroed so that -r all rebuilds. (The fuzzer's input
# had its table at offset 0 with 65536 entries.) Fixed: the rebuild
# places nothing past the end below what such a table reaches
# (struct img_refs.keep_to).
cp "$1/v0.10-c4096.qcow2" "$2" &&
size=$(stat -c %s "$2") &&
test $((size % 4096)) = 0 &&
truncate -s $((size + 4096)) "$2" &&
img-poke "$2" 64 be64 "$size" &&
img-poke "$2" 60 be32 300 &&
l1=$(img-poke "$2" 40 read be64) &&
l2=$(($(img-poke "$2" $((l1 + 4)) read be32) & ~511)) &&
test "$l2" != 0 &&
rt=$(img-poke "$2" 48 read be64) &&
rb=$(img-poke "$2" "$rt" read be64) &&
img-poke "$2" $((rb + 2 * (l2 / 4096))) be16 0
