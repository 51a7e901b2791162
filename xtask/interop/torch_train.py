"""Trains a spec's network in PyTorch and saves its state_dict for `cnn-import`.

The by-hand check of the import (docs/interop.md): train here, note PyTorch's test
accuracy, import, and compare with what `cnn-import` and `cnn-train --final-state` report.

    python xtask/interop/torch_train.py SPEC.toml EPOCHS OUT.safetensors [assets/mnist]

The module is xtask/bench/spec_net.py's twin of the spec (attributes conv1, bn1, fc1, ...,
so no rename table is needed). Adam, learning rate 1e-3, batch 64, seed 0, 2 threads.
Needs torch, numpy and safetensors.
"""
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../bench"))
import spec_net  # noqa: E402
import torch_peer  # noqa: E402


def main(argv):
    if len(argv) not in (4, 5):
        raise SystemExit(__doc__)
    spec, epochs, out = argv[1], int(argv[2]), argv[3]
    data = argv[4] if len(argv) == 5 else "assets/mnist"
    torch.manual_seed(0)
    torch.set_num_threads(2)
    train_x, train_y, test_x, test_y = torch_peer.load(data)
    model = spec_net.from_file(spec)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train_x))
        for start in range(0, len(order), 64):
            idx = order[start:start + 64]
            opt.zero_grad()
            F.cross_entropy(model(train_x[idx].float() / 255), train_y[idx]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            correct = sum((model(test_x[i:i + 1000]).argmax(1) == test_y[i:i + 1000]).sum().item()
                          for i in range(0, len(test_x), 1000))
        print(f"epoch {epoch + 1}: PyTorch test accuracy {100 * correct / len(test_x):.2f}% "
              f"({correct}/{len(test_x)})")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out)
    print("saved", out)


if __name__ == "__main__":
    main(sys.argv)
