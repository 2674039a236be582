# lib-addcow.sh: for the add-cow tests (sourced after lib.sh): mkac.py, which builds add-cow files byte by byte from the layout in img-formats(5), never through our writer.

# mkac.py OUT key=value...: an add-cow file from the layout table, never
# through our writer. Keys: image, backing (names), io, bo (their offsets:
# image at 80, backing right after it by default), is, bs (sizes stored),
# bits (cluster_bits), hs (header_size), feat, opt, bfmt, ifmt, map (one
# character per cluster, 1 = set), bmlen (bitmap bytes, default as map needs).
# mkac.py ref OUT IMAGEFILE BACKINGRAW BITS MAP: the raw disk the bits say,
# the image file's size rounded up to 512.
cat >mkac.py <<'PY'
import struct, sys
if sys.argv[1] == "ref":
    out, imgf, back, bits, m = sys.argv[2:7]
    cs = 1 << int(bits)
    data = open(imgf, "rb").read()
    size = (len(data) + 511) // 512 * 512
    data = data.ljust(size, b"\0")
    b = open(back, "rb").read() if back != "-" else b""
    b = b[:size].ljust(size, b"\0")
    res = bytearray()
    for i in range(0, size, cs):
        src = data if i // cs < len(m) and m[i // cs] == "1" else b
        res += src[i:i + cs]
    open(out, "wb").write(res)
    sys.exit(0)
out = sys.argv[1]
a = dict(x.split("=", 1) for x in sys.argv[2:])
n = lambda k, d: int(a.get(k, str(d)), 0)
img = a.get("image", "disk.raw").encode()
bk = a.get("backing", "").encode()
hs = n("hs", 4096)
io = n("io", 80)
bo = n("bo", io + len(img) if bk else 0)
buf = bytearray(max(hs, 80))
buf[0:8] = b"ADD_COW\xff"
struct.pack_into("<IIIIQQII", buf, 8, bo, n("bs", len(bk)), io,
                 n("is", len(img)), n("feat", 0), n("opt", 0),
                 n("bits", 16), hs)
buf[48:64] = a.get("bfmt", "").encode()[:16].ljust(16, b"\0")
buf[64:80] = a.get("ifmt", "raw").encode()[:16].ljust(16, b"\0")
for off, name in ((io, img), (bo, bk)):
    if name and off + len(name) <= len(buf):
        buf[off:off + len(name)] = name
m = a.get("map", "")
bm = bytearray((len(m) + 7) // 8)
for i, c in enumerate(m):
    if c == "1":
        bm[i // 8] |= 1 << (i % 8)
bm = bm[:n("bmlen", len(bm))].ljust(n("bmlen", len(bm)), b"\0")
open(out, "wb").write(buf + bm)
PY
