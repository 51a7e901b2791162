"""PyTorch side of `cargo xtask bench`: the same two networks, recipe and timing method.

usage: torch_bench.py MODEL RUNS BATCHES THREADS MNIST_DIR
prints: train_img_per_s X infer_img_per_s Y   (medians)
Needs torch and numpy (e.g. python3 -m venv ~/.cache/peer-torch && ~/.cache/peer-torch/bin/pip install torch numpy).
Agrees with ../shared/bench/torch_peer.py's architectures and SGD recipe (lr 0.05, momentum 0.9).
"""
import gzip, os, sys, time
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F

model_name, runs, batches, threads, data = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
torch.set_num_threads(threads)
torch.manual_seed(0)

def idx(name, header):
    p = os.path.join(data, name)
    raw = open(p, "rb").read() if os.path.exists(p) else gzip.open(p + ".gz").read()
    return np.frombuffer(raw, dtype=np.uint8)[header:]

train_u8 = torch.tensor(idx("train-images-idx3-ubyte", 16).reshape(-1, 1, 28, 28))
train_y = torch.tensor(idx("train-labels-idx1-ubyte", 8), dtype=torch.long)
test_x = torch.tensor(idx("t10k-images-idx3-ubyte", 16).reshape(-1, 1, 28, 28), dtype=torch.float32) / 255

def small():
    return nn.Sequential(nn.Conv2d(1, 10, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(10, 20, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(980, 10))

def medium():
    return nn.Sequential(nn.Conv2d(1, 10, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(10, 20, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(20, 40, 3, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(1960, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))

m = {"small_cnn": small, "medium_cnn": medium}[model_name]()
opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
bs = 64

def step(b):
    i = torch.arange(b * bs, (b + 1) * bs) % 60000
    # Batches are converted from u8 per step, as ours are.
    x = train_u8[i].float() / 255
    loss = F.cross_entropy(m(x), train_y[i])
    opt.zero_grad(); loss.backward(); opt.step()

m.train()
for b in range(5):
    step(b)
train = []
for r in range(runs):
    t = time.perf_counter()
    for b in range(batches):
        step(5 + r * batches + b)
    train.append(batches * bs / (time.perf_counter() - t))
m.eval()
infer = []
with torch.no_grad():
    for r in range(runs + 1):
        t = time.perf_counter()
        for i in range(0, 10000, 1000):
            m(test_x[i:i + 1000]).argmax(1)
        if r > 0:
            infer.append(10000 / (time.perf_counter() - t))
print(f"train_img_per_s {float(np.median(train)):.1f} infer_img_per_s {float(np.median(infer)):.1f}")
