"""Makes the PyTorch import fixture (crates/cnn-training/tests/fixtures/torch_import/).

A small batch-normalised CNN, written the way PyTorch code usually is (nn.Sequential, so its
tensors are named features.0.weight, ...), trained briefly on MNIST, then saved with
safetensors.torch.save_file: its state_dict (classifier.bias stored as float64, to exercise
the conversion; num_batches_tracked kept, as PyTorch saves it) and, beside it, the logits it
gives on the first 8 test images in evaluation mode.

    python xtask/interop/torch_fixture.py [assets/mnist] [OUT_DIR]

Needs torch and safetensors (pip install torch safetensors); only to regenerate the fixture.
"""
import gzip
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import save_file


def idx(path):
    data = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def find(folder, stem):
    for name in (stem, stem + ".gz"):
        if (folder / name).exists():
            return folder / name
    raise SystemExit(f"no {stem} in {folder}")


def main():
    mnist = Path(sys.argv[1] if len(sys.argv) > 1 else "assets/mnist")
    out = Path(sys.argv[2] if len(sys.argv) > 2 else
               "crates/cnn-training/tests/fixtures/torch_import")
    torch.manual_seed(0)
    x = torch.tensor(idx(find(mnist, "train-images-idx3-ubyte"))[:6000], dtype=torch.float32)
    y = torch.tensor(idx(find(mnist, "train-labels-idx1-ubyte"))[:6000], dtype=torch.long)
    x = (x / 255.0).unsqueeze(1)
    net = nn.Module()
    net.features = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2))
    net.classifier = nn.Linear(16 * 7 * 7, 10)
    forward = lambda t: net.classifier(net.features(t).flatten(1))
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    net.train()
    for start in range(0, len(x), 64):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(forward(x[start:start + 64]), y[start:start + 64])
        loss.backward()
        opt.step()
    net.eval()
    test = torch.tensor(idx(find(mnist, "t10k-images-idx3-ubyte"))[:8], dtype=torch.float32)
    with torch.no_grad():
        logits = forward((test / 255.0).unsqueeze(1))
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    state["classifier.bias"] = state["classifier.bias"].double()
    out.mkdir(parents=True, exist_ok=True)
    save_file(state, out / "state_dict.safetensors")
    save_file({"logits": logits.contiguous()}, out / "logits.safetensors")
    print("saved", sorted(state), "and logits", tuple(logits.shape), "into", out)


if __name__ == "__main__":
    main()
