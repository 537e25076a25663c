"""The export formats, each a plain-dict registry entry (`@export_format("pt2")`), and the check every export
runs: the exported model, loaded back the way a user would load it, must give nascli's logits.

No torchscript format: torch.export serves every registered space (cells with dynamic batch size, odd
resolutions, empty nodes), and TorchScript is in maintenance in PyTorch.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from nascli.atomic import write_json, write_text, write_torch
from nascli.exporting.flat_state import FlatState
from nascli.exporting.source import ExportSource
from nascli.exporting.standalone import ModelSource, space_exporter
from nascli.registry import lookup, registrar

PT_TOLERANCE, ONNX_TOLERANCE = 1e-5, 1e-4  # max |logit difference| an export may show against nascli


@dataclass(frozen=True)
class ExportFormat:
    name: str
    write: Callable[[ExportSource, Path], dict]  # writes into a folder; {"files": [...], "check": {...}}
    needs_weights: bool = True
    requires: tuple[str, ...] = ()  # modules beyond torch it imports
    extra: str | None = None  # the pip extra that installs them
    about: str = ""


EXPORT_FORMATS: dict[str, ExportFormat] = {}
_register = registrar(EXPORT_FORMATS)


def export_format(name: str, **options):
    def add(fn):
        _register(name)(ExportFormat(name, fn, **options))
        return fn

    return add


def format_of(name: str) -> ExportFormat:
    return lookup(EXPORT_FORMATS, name, "export format")


def missing_modules(fmt: ExportFormat) -> list[str]:
    return [m for m in fmt.requires if importlib.util.find_spec(m) is None]


def probe_images(source: ExportSource, batch: int) -> torch.Tensor:
    """A fixed batch of normalised-looking inputs (seeded normal noise): what the checks compare logits on."""
    s = source.shape
    return torch.randn(batch, s.channels, s.height, s.width, generator=torch.Generator().manual_seed(batch))


def _check(reference: torch.nn.Module, run: Callable[[torch.Tensor], torch.Tensor], source: ExportSource,
           tolerance: float, what: str) -> dict:
    """Max |logit difference| on batches of 1 and 3 (the batch dimension is dynamic); RuntimeError above
    `tolerance` (an export that changes the function is a bug, never a file to hand to a user)."""
    worst = 0.0
    with torch.no_grad():
        for batch in (1, 3):
            x = probe_images(source, batch)
            worst = max(worst, float((run(x) - reference(x)).abs().max()))
    if worst > tolerance:
        raise RuntimeError(f"{what} gives logits {worst:.2e} away from nascli's (tolerance {tolerance:g})")
    return {"max_abs_diff": worst, "tolerance": tolerance, "against": "nascli's eval-mode logits on seeded "
            "normal inputs, batches of 1 and 3", "loaded_with": what}


def _batch_dim():
    return torch.export.Dim("batch", min=1, max=65536)


@export_format("pt2", about="torch.export ExportedProgram (torch.export.load(path).module())")
def write_pt2(source: ExportSource, folder: Path) -> dict:
    path = folder / "model.pt2"
    program = torch.export.export(FlatState(source.model), (probe_images(source, 2),),
                                  dynamic_shapes=({0: _batch_dim()},))
    torch.export.save(program, path)
    loaded = torch.export.load(path).module()
    return {"files": [path.name],
            "check": _check(source.model, loaded, source, PT_TOLERANCE, "torch.export.load('model.pt2').module()")}


@export_format("onnx", requires=("onnx", "onnxscript", "onnxruntime"), extra="onnx",
               about="ONNX (torch.onnx.export with dynamo=True), verified with ONNX Runtime")
def write_onnx(source: ExportSource, folder: Path) -> dict:
    import onnxruntime

    path = folder / "model.onnx"
    # The exporter reports each of its steps on stdout and warns about opset choices: the command's output
    # is its own table.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(source.model, (probe_images(source, 2),), dynamo=True, input_names=["images"],
                                    output_names=["logits"], dynamic_shapes=({0: _batch_dim()},), verbose=False)
    program.save(str(path))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {"images": x.numpy()})[0])

    check = _check(source.model, run, source, ONNX_TOLERANCE, "onnxruntime.InferenceSession('model.onnx')")
    return {"files": [path.name], "check": {**check, "onnxruntime": onnxruntime.__version__}}


@export_format("state_dict", about="model_state.pt + a generated plain-PyTorch model.py (no nascli import)")
def write_state_dict(source: ExportSource, folder: Path) -> dict:
    text = space_exporter(source.arch.space).model_py(model_source(source))
    write_text(folder / "model.py", text)
    write_torch(folder / "model_state.pt", source.model.state_dict())
    module = load_module(folder / "model.py")
    rebuilt = module.build().eval()
    rebuilt.load_state_dict(torch.load(folder / "model_state.pt", weights_only=True))
    return {"files": ["model.py", "model_state.pt"], "model_py_lines": len(text.splitlines()),
            "check": _check(source.model, rebuilt, source, PT_TOLERANCE, "model.build() + load_state_dict")}


@export_format("genotype", needs_weights=False,
               about="the architecture alone: nascli's arch.json and the space's published notation")
def write_genotype(source: ExportSource, folder: Path) -> dict:
    files = space_exporter(source.arch.space).genotype_files(source.arch)
    for name, text in files.items():
        write_text(folder / name, text)
    write_json(folder / "arch.json", source.arch.to_json())
    return {"files": ["arch.json", *files]}


def model_source(source: ExportSource) -> ModelSource:
    o = source.origin
    weights = {"trained": f"trained weights from {o['checkpoint']}",
               "initialised": f"freshly initialised weights (seed {o['seed']})"}.get(o["weights"] or "", "")
    return ModelSource(source.arch, source.net, source.shape,
                       f"Exported by nascli from {o['ref']}" + (f", {weights}" if weights else "") + ".")


def load_module(path: Path):
    """Import a generated model.py by path (a fresh module each time; nothing is left in sys.modules)."""
    name = f"_nascli_export_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look their module up while it executes
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module
