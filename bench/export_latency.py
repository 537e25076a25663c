"""CPU inference latency of exported models against nascli's own eval forward, in the same process.

For one architecture per registered space (published presets; a sampled membank network) at its retrain size on
CIFAR-shaped input (3 x 32 x 32, 10 classes), three runners of the same weights are timed in interleaved rounds
(nascli.latency.interleaved_ms: a slow spell of the shared machine slows all three alike):

- nascli: the network as `nas retrain` evaluates it (eval mode, no autograd);
- pt2: `torch.export.load("model.pt2").module()`, what `nas export --format pt2` writes;
- onnxruntime: an InferenceSession on `nas export --format onnx`'s file, with as many intra-op threads as torch.

    python bench/export_latency.py --out bench/export_latency.json [--repeats 30] [--threads 1 2]

Each thread count is its own set of rows; torch and ONNX Runtime get the same number of intra-op threads.
ONNX Runtime's pool threads are told not to spin after a run: spinning threads would take the cores from the
runner timed next and make nascli's and pt2's times look worse than they are.

The goal (issue 33): pt2 and ONNX within 10% of nascli's latency. ratio = runner / nascli (below 1: faster).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
from pathlib import Path

import torch
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nascli import atomic  # noqa: E402
from nascli.exporting.formats import write_onnx, write_pt2  # noqa: E402
from nascli.exporting.source import ExportSource  # noqa: E402
from nascli.latency import LatencySettings, interleaved_ms  # noqa: E402
from nascli.spaces.base import SPACES, get_space, load_space_plugins  # noqa: E402

PRESETS = {"darts": "DARTS_V2", "pnas": "PNASNet", "nb201": "best_cifar10"}
INPUT = {"channels": 3, "height": 32, "width": 32, "num_classes": 10, "classes": [str(i) for i in range(10)],
         "mean": [0.5] * 3, "std": [0.25] * 3, "resize": None, "dataset": "cifar-shaped"}


def source_for(space_name: str) -> ExportSource:
    space = get_space(space_name)
    arch = space.preset(PRESETS[space_name]) if space_name in PRESETS else space.sample(random.Random(0))
    torch.manual_seed(0)
    source = ExportSource(arch, None, OmegaConf.to_container(space.cfg.retrain), INPUT,
                          {"ref": arch.arch_id, "run": None, "checkpoint": None, "weights": "initialised", "seed": 0,
                           "accuracy": None})
    source.model = space.build(arch, source.shape, space.cfg.retrain).eval()
    return source


@torch.no_grad()
def time_runners(model, program, session, x: torch.Tensor, settings: LatencySettings) -> list[float]:
    feed = {"images": x.numpy()}
    return interleaved_ms([lambda: model(x), lambda: program(x), lambda: session.run(None, feed)],
                          torch.device("cpu"), settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/export_latency.json"))
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    import onnxruntime

    load_space_plugins()
    settings = LatencySettings(repeats=args.repeats, warmup=5)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for space_name in sorted(SPACES):
            source = source_for(space_name)
            folder = Path(tmp) / space_name
            folder.mkdir()
            write_pt2(source, folder)
            write_onnx(source, folder)
            program = torch.export.load(folder / "model.pt2").module()
            for threads, batch in [(t, b) for t in args.threads for b in args.batches]:
                torch.set_num_threads(threads)
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = threads
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                session = onnxruntime.InferenceSession(str(folder / "model.onnx"), options,
                                                       providers=["CPUExecutionProvider"])
                x = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(batch))
                ms = time_runners(source.model, program, session, x, settings)
                row = {"space": space_name, "arch_id": source.arch.arch_id, "threads": threads, "batch": batch,
                       "nascli_ms": round(ms[0], 3), "pt2_ms": round(ms[1], 3), "onnxruntime_ms": round(ms[2], 3),
                       "pt2_ratio": round(ms[1] / ms[0], 3), "onnxruntime_ratio": round(ms[2] / ms[0], 3)}
                rows.append(row)
                print(row, flush=True)
    doc = {"bench": "export_latency", "command": "python bench/export_latency.py --out " + str(args.out)
           + " --threads " + " ".join(map(str, args.threads)),
           "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                       "torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
           "settings": {"repeats": args.repeats, "warmup": 5, "input": "3x32x32 float32, NCHW",
                        "network": "each space's retrain size"},
           "goal": "pt2 and onnxruntime within 10% of nascli (ratio <= 1.10)",
           "rows": rows,
           "within_goal": {k: all(r[f"{k}_ratio"] <= 1.10 for r in rows) for k in ("pt2", "onnxruntime")}}
    atomic.write_json(args.out, doc)


if __name__ == "__main__":
    main()
