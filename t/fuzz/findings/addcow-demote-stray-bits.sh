#!/bin/sh
# addcow-demote-stray-bits.sh: finding of fuzz-demote (fixed with img_addcow_clear_stray): demotion (and compaction) of an add-cow whose bitmap holds set bits past the disk succeeded but left them, so a fresh check found leaks.
# usage: addcow-demote-stray-bits.sh SEEDS OUT
#
# plain.add-cow with 2 MiB clusters (cluster_bits 21 at offset 40): in
# memory the disk is at most 64 MiB, 32 clusters, 4 bitmap bytes; a fifth
# byte 0xff sets 8 bits past the disk. img-check calls them 8 leaks; after
# img-demote (exit 0, every clear cluster copied) they were still there;
# so after img-compact.
cp "$1/plain.add-cow" "$2" &&
img-poke "$2" 40 le32 21 &&
printf '\377' >>"$2"
