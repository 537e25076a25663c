"""Classify images with a model that `nas export` wrote: PyTorch (or ONNX Runtime), NumPy and Pillow only, no nascli.

    python examples/classify.py EXPORT_FOLDER IMAGE [IMAGE ...]

export.json in the folder says what the model takes (input shape, the mean / std it was trained with) and
what its outputs mean (class names); this script applies exactly that.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def load_model(folder: Path, meta: dict):
    """A function from a float32 N x C x H x W array to logits, for each format that carries weights."""
    fmt = meta["export_format"]
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
        return lambda x: session.run(None, {"images": x})[0]
    import torch

    if fmt == "pt2":
        net = torch.export.load(folder / "model.pt2").module()
    elif fmt == "state_dict":
        spec = importlib.util.spec_from_file_location("exported_model", folder / "model.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        net = module.build()
        net.load_state_dict(torch.load(folder / "model_state.pt"))
        net.eval()
    else:
        raise SystemExit(f"a {fmt} export holds no weights; export with --format pt2, onnx or state_dict")

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.from_numpy(x)).numpy()

    return run


def preprocess(path: Path, meta: dict) -> np.ndarray:
    """The image as the network saw its training images: resized, scaled to 0..1, normalised per channel."""
    channels, height, width = meta["input"]["shape"]
    image = Image.open(path).convert("L" if channels == 1 else "RGB")
    if image.size != (width, height):
        image = image.resize((width, height), Image.BILINEAR)
    x = np.asarray(image, dtype=np.float32) / 255.0
    x = x[None] if channels == 1 else x.transpose(2, 0, 1)
    mean = np.asarray(meta["normalisation"]["mean"], dtype=np.float32)[:, None, None]
    std = np.asarray(meta["normalisation"]["std"], dtype=np.float32)[:, None, None]
    return ((x - mean) / std)[None].astype(np.float32)


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise SystemExit(__doc__)
    folder = Path(argv[0])
    meta = json.loads((folder / "export.json").read_text())
    model = load_model(folder, meta)
    for path in map(Path, argv[1:]):
        logits = model(preprocess(path, meta))[0]
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        best = int(probs.argmax())
        print(f"{path}: {meta['classes'][best]} ({100 * probs[best]:.1f}%)")


if __name__ == "__main__":
    main(sys.argv[1:])
