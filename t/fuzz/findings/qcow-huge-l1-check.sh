#!/bin/sh
# qcow-huge-l1-check.sh: finding of fuzz-check (timeout): a 40 KiB qcow claiming a 256 TiB disk makes every check-mode open read a 1 GiB L1 table, zero-filled past the end of the file, and walk it: 13 s and 1 GiB of memory.
# open: check leaks all compact
# usage: qcow-huge-l1-check.sh SEEDS OUT
#
# The L1 table (134 million entries for 4 KiB clusters and 512-entry L2
# tables) is within QEMU's own bound (INT_MAX bytes), so the ordinary open
# refuses it only because it runs past the end of the file; an open for
# checking reads what the file holds of it, zero-filling the rest. The
# bound should follow the file's size instead (issue 10, resource limits).
cp "$1/plain.qcow" "$2" &&
img-poke "$2" 24 be64 0xffffff180000
