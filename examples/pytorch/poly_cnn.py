#!/usr/bin/env python3
"""Train a small quadratic CNN in PyTorch, export it to ONNX, and write its reference logits.

The network mixes what `ppnn import` maps (docs/onnx.md): BatchNorm after a conv, a
per-element quadratic a*x^2 + b*x + c written with Pow/Mul/Add, PyTorch's Pad + AveragePool
(AvgPool2d with padding and count_include_pad), a strided conv, a per-channel quadratic
a*x*x + b*x, and a Gemm. Inputs are MNIST pixels p/255 (ppnn import's default normalisation).

  python3 examples/pytorch/poly_cnn.py --out DIR [--steps 600] [--relu] [--ref-count 16]

writes DIR/poly_cnn.onnx and DIR/poly_cnn_logits.csv (logits of the first --ref-count MNIST
test images, one row per image) — with the defaults, the fixture tests/data/onnx/ that
tests/test_onnx_import.c checks without torch.
--relu exports the same net with ReLU activations (DIR/relu_cnn.onnx), which ppnn refuses.
Needs Debian's python3-torch (apt-get install python3-torch); not needed by `make test`.
"""
import argparse
import gzip
import os
import struct

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
MNIST = os.path.join(HERE, "..", "..", "data", "mnist")


def read_idx(name):
    path = os.path.join(MNIST, name)
    opener = gzip.open if not os.path.exists(path) else open
    with opener(path if os.path.exists(path) else path + ".gz", "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    nd = magic & 0xFF
    dims = struct.unpack(">" + "I" * nd, data[4:4 + 4 * nd])
    return torch.frombuffer(bytearray(data[4 + 4 * nd:]), dtype=torch.uint8).reshape(dims)


class PolyElement(nn.Module):
    """a*x^2 + b*x + c with its own (a, b, c) per element (exported as Pow, Mul, Add)."""

    def __init__(self, shape):
        super().__init__()
        self.a = nn.Parameter(torch.full(shape, 0.1))
        self.b = nn.Parameter(torch.full(shape, 0.5))
        self.c = nn.Parameter(torch.zeros(shape))

    def forward(self, x):
        return self.a * torch.pow(x, 2) + self.b * x + self.c


class PolyChannel(nn.Module):
    """a*x*x + b*x with one (a, b) per channel (exported as Mul, Mul, Add)."""

    def __init__(self, channels):
        super().__init__()
        self.a = nn.Parameter(torch.full((channels, 1, 1), 0.1))
        self.b = nn.Parameter(torch.full((channels, 1, 1), 0.5))

    def forward(self, x):
        return self.a * x * x + self.b * x


def make_net(relu):
    act1 = nn.ReLU() if relu else PolyElement((4, 28, 28))
    act2 = nn.ReLU() if relu else PolyChannel(8)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=1, padding=1), nn.BatchNorm2d(4), act1,
        nn.AvgPool2d(2, stride=2, padding=1, count_include_pad=True),   # Pad + AveragePool
        nn.Conv2d(4, 8, 3, stride=2, padding=0), act2,
        nn.Flatten(), nn.Linear(8 * 7 * 7, 10))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--relu", action="store_true")
    ap.add_argument("--ref-count", type=int, default=16)
    args = ap.parse_args()
    torch.manual_seed(1)
    x = read_idx("train-images-idx3-ubyte").float().div(255).unsqueeze(1)
    y = read_idx("train-labels-idx1-ubyte").long()
    net = make_net(args.relu)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    for step in range(args.steps):
        idx = torch.randint(0, x.shape[0], (64,))
        loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        if step % 100 == 0:
            print(f"step {step} loss {loss.item():.4f}")
    net.eval()
    xt = read_idx("t10k-images-idx3-ubyte").float().div(255).unsqueeze(1)
    yt = read_idx("t10k-labels-idx1-ubyte").long()
    with torch.no_grad():
        acc = (net(xt[:2000]).argmax(1) == yt[:2000]).float().mean().item()
    print(f"test accuracy (2000 images): {acc:.4f}")
    os.makedirs(args.out, exist_ok=True)
    name = "relu_cnn" if args.relu else "poly_cnn"
    onnx_path = os.path.join(args.out, name + ".onnx")
    torch.onnx.export(net, xt[:1], onnx_path, opset_version=13, input_names=["image"],
                      output_names=["logits"], dynamic_axes={"image": {0: "batch"},
                                                             "logits": {0: "batch"}})
    with torch.no_grad():
        logits = net(xt[:args.ref_count]).double()
    with open(os.path.join(args.out, name + "_logits.csv"), "w") as f:
        for row in logits:
            f.write(",".join(f"{v:.9g}" for v in row.tolist()) + "\n")
    print(f"wrote {onnx_path}")


if __name__ == "__main__":
    main()
