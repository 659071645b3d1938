"""Writes the seed corpora of the image fuzz harnesses (fuzz/corpus/fuzz_{png,npy,dicom,manifest}/)
with tests/gen/imagegen.py. Run from the repository root: python3 tests/gen/fuzz_images.py"""
import os, struct, sys
sys.path.insert(0, os.path.dirname(__file__))
from imagegen import png, npy, dicom

def out(h, name):
    d = 'fuzz/corpus/fuzz_' + h
    os.makedirs(d, exist_ok=True)
    return os.path.join(d, name)

px = bytes((7 * i) % 256 for i in range(64))
png(out('png', 'grey8.png'), 8, 8, [px[8 * r:8 * r + 8] for r in range(8)])
png(out('png', 'grey16.png'), 4, 4, [px[8 * r:8 * r + 8] for r in range(4)], 16)
png(out('png', 'rgb8.png'), 4, 2, [px[12 * r:12 * r + 12] for r in range(2)], 8, 2)
png(out('png', 'rgba8.png'), 2, 2, [bytes([1, 2, 3, 255, 4, 5, 6, 255])] * 2, 8, 6)
png(out('png', 'grey1.png'), 8, 2, [b'\xa5', b'\x5a'], 1)
npy(out('npy', 'u8_nhw.npy'), (2, 4, 4), px[:32])
npy(out('npy', 'f4_nchw.npy'), (1, 2, 2, 2), b''.join(struct.pack('<f', i / 8) for i in range(8)), '<f4')
npy(out('npy', 'u8_hw.npy'), (3, 5), px[:15])
dicom(out('dicom', 'window.dcm'), 4, 4, px[:16], '128', '256')
dicom(out('dicom', 'minmax.dcm'), 4, 4, px[16:32])
open(out('manifest', 'names.json'), 'w').write(
    '{"format": "ppnn-names", "version": 1, "key_id": "0675a58bc96057e98e97d8b2d2c00012",'
    ' "images": 2, "shape": [1, 28, 28], "names": ["a.png", "b, \\"c\\".npy[0]"]}\n')
print('wrote fuzz/corpus/fuzz_{png,npy,dicom,manifest}/')
