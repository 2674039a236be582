#!/bin/sh
# qcow-huge-l1-check.sh: finding of fuzz-check (timeout): a 40 KiB qcow claiming a 256 TiB disk makes every check-mode open read a 1 GiB L1 table, zero-filled past the end of the file, and walk it: 13 s and 1 GiB of memory.
# usage: qcow-huge-l1-check.sh SEEDS OUT
#
# The L1 table (134 million entries for 4 KiB clusters and 512-entry L2
# tables) is within QEMU's own bound (INT_MAX bytes), so the ordinary open
# refuses it only because it runs past the end of the file; an open for
# checking read what the file holds of it, zero-filling the rest. Fixed:
# checks read a table past the end of the file only up to 32 MiB past it
# (IMG_MAX_TABLE_PAST_EOF), so this image is refused at open.
cp "$1/plain.qcow" "$2" &&
img-poke "$2" 24 be64 0xffffff180000
