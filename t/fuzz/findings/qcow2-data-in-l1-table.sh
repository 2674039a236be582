#!/bin/sh
# qcow2-data-in-l1-table.sh: finding of fuzz-all: a qcow2 L2 entry mapping guest data onto the L1 table, whose entry had a wrong COPIED flag: -r all corrected the flag, as qemu-img does, and so changed what the guest read there.
# usage: qcow2-data-in-l1-table.sh SEEDS OUT
#
# v1.1-c4096.qcow2: L2 entry 0 set to the L1 table's offset (guest
# cluster 0 reads the L1 table), and the COPIED flag of L1 entry 0
# cleared (its L2 table has refcount 1). Fixed: flags in a table that
# guest data entries point into are reported, never rewritten
# (q2c_holds_data). (The fuzzer's input had more damage around it.)
cp "$1/v1.1-c4096.qcow2" "$2" &&
l1=$(img-poke "$2" 40 read be64) &&
l2=$(($(img-poke "$2" $((l1 + 4)) read be32) & ~511)) &&
test "$l2" != 0 &&
img-poke "$2" "$l2" be64 "$l1" &&
img-poke "$2" "$l1" be32 0
