#!/usr/bin/env python3
"""Writes fuzz/corpus/fuzz_onnx/tiny.onnx: the smallest model ppnn imports end to end
(Conv with padding, BatchNorm, x*x, AveragePool, Flatten, Gemm on a 1x6x6 input), so the
fuzzer starts from bytes that reach every lowering stage. Needs python3-torch; run from the
repository root: /usr/bin/python3 tests/gen/onnx_seed.py"""
import torch
import torch.nn as nn


class Square(nn.Module):
    def forward(self, x):
        return x * x


torch.manual_seed(3)
net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), Square(),
                    nn.AvgPool2d(2), nn.Flatten(), nn.Linear(18, 3)).eval()
torch.onnx.export(net, torch.zeros(1, 1, 6, 6), "fuzz/corpus/fuzz_onnx/tiny.onnx",
                  opset_version=13, input_names=["x"], output_names=["y"])
print("wrote fuzz/corpus/fuzz_onnx/tiny.onnx")
