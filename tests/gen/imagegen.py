"""Writers of tiny PNG, NumPy .npy and DICOM files for the CLI image tests (tests/cli_images.sh),
byte by byte with only the standard library (independent of libspng and DCMTK)."""
import struct, zlib, sys, os
def png(path, w, h, rows, depth=8, color=0):
    def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    raw = b''.join(b'\x00' + r for r in rows)
    data = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, depth, color, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b'')
    open(path, 'wb').write(data)
def npy(path, shape, payload, descr='|u1'):
    d = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (descr, ''.join('%d, ' % s for s in shape))
    hl = len(d) + 1
    while (10 + hl) % 64: hl += 1
    open(path, 'wb').write(b'\x93NUMPY\x01\x00' + struct.pack('<H', hl) + d.encode() + b' ' * (hl - len(d) - 1) + b'\n' + payload)
def dicom(path, rows, cols, pix, wc=None, ww=None):
    def el(g, e, vr, v):
        if len(v) % 2: v += b'\x00' if vr == b'UI' else b' '
        if vr in (b'OB', b'OW', b'UN', b'SQ'): return struct.pack('<HH', g, e) + vr + b'\x00\x00' + struct.pack('<I', len(v)) + v
        return struct.pack('<HH', g, e) + vr + struct.pack('<H', len(v)) + v
    us = lambda g, e, x: el(g, e, b'US', struct.pack('<H', x))
    meta = el(2, 1, b'OB', b'\x00\x01') + el(2, 2, b'UI', b'1.2.840.10008.5.1.4.1.1.7') + el(2, 3, b'UI', b'1.2.3.4') + el(2, 0x10, b'UI', b'1.2.840.10008.1.2.1')
    ds = el(8, 0x16, b'UI', b'1.2.840.10008.5.1.4.1.1.7') + el(8, 0x18, b'UI', b'1.2.3.4') + us(0x28, 2, 1) + el(0x28, 4, b'CS', b'MONOCHROME2')
    ds += us(0x28, 0x10, rows) + us(0x28, 0x11, cols) + us(0x28, 0x100, 8) + us(0x28, 0x101, 8) + us(0x28, 0x102, 7) + us(0x28, 0x103, 0)
    if wc is not None: ds += el(0x28, 0x1050, b'DS', wc.encode()) + el(0x28, 0x1051, b'DS', ww.encode())
    ds += el(0x7fe0, 0x10, b'OB', pix)
    open(path, 'wb').write(b'\x00' * 128 + b'DICM' + el(2, 0, b'UL', struct.pack('<I', len(meta))) + meta + ds)
def mnist(idx_dir, first, n):
    b = open(os.path.join(idx_dir, 't10k-images-idx3-ubyte'), 'rb').read()
    return [b[16 + 784 * i: 16 + 784 * (i + 1)] for i in range(first, first + n)]

def colour_idx(path_images, path_labels, n, seed):
    """A 4-D IDX colour data set (n, 3, 8, 8): class k has a bright 4x4 square in quadrant k // 3
    of channel k % 3 on noise (the classes of one quadrant differ only in the channel)."""
    import random
    r = random.Random(seed)
    ims, labs = [], []
    for _ in range(n):
        k = r.randrange(10)
        px = [r.randrange(60) for _ in range(192)]
        ch, q = k % 3, k // 3
        for y in range(4):
            for x in range(4):
                px[ch * 64 + ((q // 2) * 4 + y) * 8 + (q % 2) * 4 + x] = 180 + r.randrange(60)
        ims.append(bytes(px))
        labs.append(k)
    open(path_images, 'wb').write(struct.pack('>BBBBIIII', 0, 0, 8, 4, n, 3, 8, 8) + b''.join(ims))
    open(path_labels, 'wb').write(struct.pack('>BBBBI', 0, 0, 8, 1, n) + bytes(labs))
    return ims
