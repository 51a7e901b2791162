"""Loads a run's weights into a PyTorch twin of its spec and compares the logits with ours.

usage (by hand; PyTorch is too big for CI):
    cargo run --release -p cnn-training --example logits -- RUN_DIR 1000 /tmp/ours.f32
    twin_check.py SPEC.toml RUN_DIR/final_state.safetensors /tmp/ours.f32 assets/mnist

prints the largest absolute difference over the N x classes logits and how many argmaxes
agree. Needs torch, numpy and safetensors.
"""
import os
import sys

import numpy as np
import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spec_net  # noqa: E402
import torch_peer  # noqa: E402


def main(argv):
    if len(argv) != 5:
        raise SystemExit(__doc__)
    spec, weights, ours_path, data = argv[1:]
    model = spec_net.from_file(spec)
    state = {k: v for k, v in load_file(weights).items()}
    model.load_state_dict(state, strict=True)
    model.eval()
    _, _, test_x, _ = torch_peer.load(data)
    ours = np.fromfile(ours_path, dtype="<f4")
    n = len(ours) // 10
    ours = torch.tensor(ours.reshape(n, 10))
    with torch.no_grad():
        theirs = model(test_x[:n])
    diff = (theirs - ours).abs().max().item()
    same = (theirs.argmax(1) == ours.argmax(1)).sum().item()
    print(f"{os.path.basename(spec)}: {n} images, largest |logit difference| {diff:.3g}, "
          f"argmax agrees on {same}/{n}")


if __name__ == "__main__":
    main(sys.argv)
