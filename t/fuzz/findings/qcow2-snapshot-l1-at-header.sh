#!/bin/sh
# qcow2-snapshot-l1-at-header.sh: finding of fuzz-all (fixed by 47351b7, "an L1 table over the header ... is never repaired"): a qcow2 snapshot whose L1 table offset is 0 made -r all "repair" the header as that snapshot's L1 entries, zeroing the magic: the image no longer opened as qcow2.
# usage: qcow2-snapshot-l1-at-header.sh SEEDS OUT
#
# snap.qcow2 (512-byte clusters, two snapshots; snapshot table at 24064)
# with the first snapshot's l1_table_offset (the entry's first 8 bytes)
# set to 0. img-check reads the header as that L1 table ("found L1 entry
# with reserved bits set: 514649fb00000003") and -r all clears "L1 entry
# 0" in place: offset 0, the magic and version. The check should refuse a
# snapshot L1 table that overlaps the header (or any metadata) as a
# corruption it does not repair, and a repair should never write inside
# the header.
cp "$1/snap.qcow2" "$2" &&
so=$(img-poke "$2" 64 read be64) &&
img-poke "$2" "$so" be64 0
