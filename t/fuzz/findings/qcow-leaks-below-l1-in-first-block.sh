#!/bin/sh
# qcow-leaks-below-l1-in-first-block.sh: finding of fuzz-compact, still open: a qcow v1 image with 512-byte clusters whose only table, the L1 table, lies at 0x800 after three unused clusters: compaction and leak repair say they reclaimed them, yet a fresh check still finds the 3 leaks.
# usage: qcow-leaks-below-l1-in-first-block.sh SEEDS OUT
# open: compact
#
# The leaks share the file's first 4 KiB block with the header and the
# L1 table, and nothing after them can move down: no hole can be punched
# there and the file cannot be cut shorter. Only moving the L1 table down
# (a header update) would give them back. (The fuzzer's input also had a
# backing file name; this is the same layout, made from nothing.)
{
	printf 'QFI\373' &&
	printf '\000\000\000\001' &&            # version 1
	printf '\000\000\000\000\000\000\000\000' && # no backing file
	printf '\000\000\000\000\000\000\000\000' && # its size, mtime
	printf '\000\000\000\000\000\004\000\000' && # 256 KiB
	printf '\011\014\000\000' &&            # cluster_bits 9, l2_bits 12
	printf '\000\000\000\000' &&            # no encryption
	printf '\000\000\000\000\000\000\010\000'    # L1 table at 0x800
} >"$2" &&
truncate -s 2056 "$2"
