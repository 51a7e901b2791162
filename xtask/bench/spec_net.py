"""A network spec of this project (its TOML file) as a PyTorch module.

The module's attributes are named as crates/cnn-models names its variables (conv1, bn1, ...,
fc1, ...), so a checkpoint's weights load into it with `load_state_dict(strict=True)`, and
its layers compute what ours compute: conv -> batch norm -> activation, pools of a K-window
at stride K (floored), a global average pool, linear -> activation, dropout, and a final
linear layer with one output per class.
"""
import tomllib

import torch.nn as nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "silu": nn.SiLU,
               "none": nn.Identity}


def padding_pixels(value, kernel):
    if value == "same":
        return kernel // 2
    if value == "valid":
        return 0
    return int(value)


class SpecNet(nn.Module):
    def __init__(self, spec, input_shape, classes):
        super().__init__()
        self.ops = []  # the forward's steps, in order (modules also set as attributes)
        c, h, w = input_shape
        counts = {"conv": 0, "bn": 0, "fc": 0}
        flat = None

        def add(kind, module):
            counts[kind] += 1
            setattr(self, f"{kind}{counts[kind]}", module)
            self.ops.append(module)

        # Parameter-free steps are registered too (as `step1`, ...), so that `eval()` reaches
        # the dropouts; they add no entries to the state dict.
        self._steps = nn.ModuleList()

        for layer in spec.get("layer", []):
            act = ACTIVATIONS[layer.get("activation", "relu")]
            if "conv" in layer:
                k, s = layer.get("kernel", 3), layer.get("stride", 1)
                p = padding_pixels(layer.get("padding", "same"), k)
                add("conv", nn.Conv2d(c, layer["conv"], k, stride=s, padding=p))
                c, h, w = layer["conv"], (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
                if layer.get("batchnorm", False):
                    add("bn", nn.BatchNorm2d(c))
                self.ops.append(act())
            elif "maxpool" in layer or "avgpool" in layer:
                k = layer.get("maxpool") or layer["avgpool"]
                self.ops.append(nn.MaxPool2d(k) if "maxpool" in layer else nn.AvgPool2d(k))
                h, w = h // k, w // k
            elif "globalavgpool" in layer:
                self.ops.append(nn.AdaptiveAvgPool2d(1))
                h, w = 1, 1
            elif "linear" in layer:
                flat = self._flatten(flat, c * h * w)
                add("fc", nn.Linear(flat, layer["linear"]))
                self.ops.append(act())
                flat = layer["linear"]
            elif "dropout" in layer:
                self.ops.append(nn.Dropout(layer["dropout"]))
        flat = self._flatten(flat, c * h * w)
        add("fc", nn.Linear(flat, classes))
        self._register_steps()

    def _flatten(self, flat, size):
        if flat is None:
            self.ops.append(nn.Flatten())
            return size
        return flat

    def _register_steps(self):
        for op in self.ops:
            if not any(True for _ in op.parameters()) and not list(op.buffers()):
                self._steps.append(op)

    def forward(self, x):
        for op in self.ops:
            x = op(x)
        return x


def from_file(path, input_shape=(1, 28, 28), classes=10):
    """The network of the spec file at `path` for inputs of `input_shape` and `classes`."""
    with open(path, "rb") as f:
        return SpecNet(tomllib.load(f), input_shape, classes)
