"""Checks an exported ONNX file with the ONNX checker and onnxruntime, by hand.

    python xtask/interop/onnx_check.py MODEL.onnx [OURS.f32] [assets/mnist]

Runs the model on all 10,000 MNIST test images (pixels / 255, as the file's metadata says)
and prints its test accuracy; given OURS.f32 (our logits, from
`cargo run --release -p cnn-training --example logits -- RUN_DIR 10000 OURS.f32`), also the
largest |logit difference| and how many argmaxes agree. Needs onnx, onnxruntime, numpy.
"""
import gzip
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort


def idx(folder, stem):
    for name in (stem, stem + ".gz"):
        path = Path(folder) / name
        if path.exists():
            data = gzip.open(path).read() if name.endswith(".gz") else path.read_bytes()
            dims = data[3]
            shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
            return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)
    raise SystemExit(f"no {stem} in {folder}")


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    model_path, ours = argv[1], (argv[2] if len(argv) > 2 else None)
    data = argv[3] if len(argv) > 3 else "assets/mnist"
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    print(f"checker: ok (opset {model.opset_import[0].version}); classes",
          json.loads(meta["class_names"]))
    x = idx(data, "t10k-images-idx3-ubyte").astype(np.float32)[:, None] / 255.0
    y = idx(data, "t10k-labels-idx1-ubyte")
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    logits = np.concatenate([session.run(["logits"], {"input": x[i:i + 1000]})[0]
                             for i in range(0, len(x), 1000)])
    correct = int((logits.argmax(1) == y).sum())
    print(f"onnxruntime {ort.__version__}: test accuracy {100 * correct / len(y):.2f}% "
          f"({correct}/{len(y)})")
    if ours:
        mine = np.fromfile(ours, dtype="<f4").reshape(-1, logits.shape[1])
        n = len(mine)
        diff = np.abs(mine - logits[:n]).max()
        same = int((mine.argmax(1) == logits[:n].argmax(1)).sum())
        print(f"against ours: largest |logit difference| {diff:.3g} over {n} images, "
              f"argmax agrees on {same}/{n}")


if __name__ == "__main__":
    main(sys.argv)
