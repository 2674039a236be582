#!/bin/sh
# demo.sh: the main job on a built-in example: create a qcow2 over a raw base, inspect it, export it as raw.
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
PATH="$top/cmd:$PATH"
dir=$(mktemp -d "${TMPDIR:-/tmp}/imgtools-demo.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cd "$dir"

run() {
	printf '\n$ %s\n' "$*"
	"$@"
}

# A sample image: a raw base with some data, and a qcow2 over it, made by
# img-create; guest writes into the qcow2 (a data cluster, a zero cluster)
# come from qemu-io until imgtools has a writer of its own.
run img-create -f raw base.raw 4M
dd if=/dev/zero bs=64k count=16 2>/dev/null | tr '\0' '\021' |
	dd of=base.raw conv=notrunc 2>/dev/null
run img-create -f qcow2 -b base.raw -F raw disk.qcow2
qemu-io -f qcow2 -c 'write -q -P 0x22 512k 128k' -c 'write -q -z 0 64k' \
	-c 'write -q -P 0x33 2M 64k' disk.qcow2 >/dev/null

run img-info disk.qcow2
run img-map disk.qcow2
run img-map --output=json disk.qcow2
run img-convert -O raw disk.qcow2 disk.raw
run ls -ls disk.raw
qemu-img convert -O raw disk.qcow2 qemu.raw
run cmp disk.raw qemu.raw
echo "demo: the raw export equals qemu-img's byte for byte"
