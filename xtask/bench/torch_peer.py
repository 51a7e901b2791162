"""PyTorch's side of `cargo xtask bench`: a spec file's network in PyTorch, timed the way
ours is.

usage:
    torch_peer.py throughput SPEC RUNS BATCHES THREADS DATA_DIR
        prints: train_img_per_s X infer_img_per_s Y   (medians over RUNS)
        Training: SGD (lr 0.05, momentum 0.9, weight decay 1e-4), batch 64, each batch
        converted from u8 inside the step, as ours is. Inference: the 10k test images in
        batches of 1000 without autograd, after one untimed pass.
    torch_peer.py time-to SPEC EPOCHS THREADS DATA_DIR
        prints one line per epoch: epoch N train_s S test_acc A
        SGD as above under a one-cycle schedule peaking at 0.05 over EPOCHS epochs; train_s
        counts training time only, not the test pass after each epoch.

SPEC is a network's TOML file (assets/models/small_cnn.toml for a preset), built by
spec_net.py; DATA_DIR holds the four MNIST IDX files (plain or .gz).
Needs torch and numpy; a venv outside the repository keeps them apart, for example
    python3 -m venv ~/.cache/peer-torch && ~/.cache/peer-torch/bin/pip install torch numpy
and `cargo xtask bench --torch-python ~/.cache/peer-torch/bin/python`.
"""
import gzip
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spec_net  # noqa: E402  (beside this script)

BATCH = 64


def read_idx(folder, name, header):
    """The body of one IDX file, plain or gzipped, after its `header` bytes."""
    path = os.path.join(folder, name)
    if os.path.exists(path):
        with open(path, "rb") as f:
            raw = f.read()
    elif os.path.exists(path + ".gz"):
        with gzip.open(path + ".gz") as f:
            raw = f.read()
    else:
        raise SystemExit(f"torch_peer.py: no {name} (or {name}.gz) in {folder}")
    return np.frombuffer(raw, dtype=np.uint8)[header:]


def load(folder):
    """Training images as u8 [N,1,28,28] with labels; test images as floats in [0,1]."""
    def images(name):
        return torch.tensor(read_idx(folder, name, 16).reshape(-1, 1, 28, 28).copy())

    def labels(name):
        return torch.tensor(read_idx(folder, name, 8).astype(np.int64))

    return (images("train-images-idx3-ubyte"), labels("train-labels-idx1-ubyte"),
            images("t10k-images-idx3-ubyte").float() / 255, labels("t10k-labels-idx1-ubyte"))


def network(spec):
    """The network of the spec file `spec`, layer for layer as crates/cnn-models builds it."""
    return spec_net.from_file(spec)


def sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)


def train_step(model, opt, x_u8, y):
    loss = F.cross_entropy(model(x_u8.float() / 255), y)
    opt.zero_grad()
    loss.backward()
    opt.step()


def test_accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        right = sum((model(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum().item()
                    for i in range(0, len(x), 1000))
    model.train()
    return 100.0 * right / len(x)


def throughput(name, runs, batches, data):
    train_x, train_y, test_x, _ = load(data)
    model, n = network(name), len(train_x)
    opt = sgd(model)

    def step(b):
        i = torch.arange(b * BATCH, (b + 1) * BATCH) % n
        train_step(model, opt, train_x[i], train_y[i])

    for b in range(5):  # warm-up, untimed
        step(b)
    train = []
    for r in range(runs):
        start = time.perf_counter()
        for b in range(batches):
            step(5 + r * batches + b)
        train.append(batches * BATCH / (time.perf_counter() - start))
    model.eval()
    infer = []
    with torch.no_grad():
        for r in range(runs + 1):
            start = time.perf_counter()
            for i in range(0, len(test_x), 1000):
                model(test_x[i:i + 1000]).argmax(1)
            if r > 0:
                infer.append(len(test_x) / (time.perf_counter() - start))
    print(f"train_img_per_s {statistics.median(train):.1f} "
          f"infer_img_per_s {statistics.median(infer):.1f}")


def time_to(name, epochs, data):
    train_x, train_y, test_x, test_y = load(data)
    model, steps = network(name), len(train_x) // BATCH
    opt = sgd(model)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=epochs * steps)
    for epoch in range(1, epochs + 1):
        start, order = time.perf_counter(), torch.randperm(len(train_x))
        for s in range(steps):
            i = order[s * BATCH:(s + 1) * BATCH]
            train_step(model, opt, train_x[i], train_y[i])
            sched.step()
        seconds = time.perf_counter() - start
        acc = test_accuracy(model, test_x, test_y)
        print(f"epoch {epoch} train_s {seconds:.2f} test_acc {acc:.2f}", flush=True)


def main(argv):
    torch.manual_seed(0)
    if len(argv) == 7 and argv[1] == "throughput":
        torch.set_num_threads(int(argv[5]))
        throughput(argv[2], int(argv[3]), int(argv[4]), argv[6])
    elif len(argv) == 6 and argv[1] == "time-to":
        torch.set_num_threads(int(argv[4]))
        time_to(argv[2], int(argv[3]), argv[5])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
