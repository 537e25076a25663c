"""Per-space writers of what an export needs to know about a space: the plain-PyTorch `model.py` of one
architecture, and its genotype in the notation the space's papers use.

A writer is registered for a space name the way spaces themselves are (`@register_space_exporter("darts")`);
the export tests run over every registered space, so a new space is exported once it registers a writer.
"""

from __future__ import annotations

import pprint
from collections.abc import Callable
from dataclasses import dataclass

from nascli.arch import Arch
from nascli.datashape import DataShape
from nascli.registry import load_plugins, lookup, registrar


@dataclass(frozen=True)
class ModelSource:
    """What model.py is generated from: the architecture, its network size and the data it takes."""

    arch: Arch
    net: dict  # the size node the network was built with (channels, layers, ...)
    shape: DataShape
    header: str  # the docstring's provenance lines


@dataclass(frozen=True)
class SpaceExporter:
    model_py: Callable[[ModelSource], str]  # the whole text of a standalone model.py
    genotype_files: Callable[[Arch], dict[str, str]]  # file name -> text, in the space's published notation


SPACE_EXPORTERS: dict[str, SpaceExporter] = {}
register_space_exporter = registrar(SPACE_EXPORTERS)
BUILTIN_EXPORTER_MODULES = ("nascli.exporting.standalone.cells", "nascli.exporting.standalone.nb201",
                            "nascli.exporting.standalone.membank")


def space_exporter(space: str) -> SpaceExporter:
    load_plugins("nascli.exporters", BUILTIN_EXPORTER_MODULES)
    return lookup(SPACE_EXPORTERS, space, "space to export", "this space registers no model.py writer")


def literal(value, indent: int = 0) -> str:
    """A Python literal for `value`, wrapped at 110 columns, continuation lines indented by `indent`."""
    text = pprint.pformat(value, width=110 - indent, compact=True, sort_dicts=False)
    return text.replace("\n", "\n" + " " * indent)


def module_header(source: ModelSource, what: str, functional: bool = False) -> str:
    """model.py's opening: what it is, where it came from, how to use it, and the plain imports it needs."""
    s = source.shape
    return f'''"""{what}, as plain PyTorch (no nascli import).

{source.header}

    import torch
    from model import build
    model = build()
    model.load_state_dict(torch.load("model_state.pt"))
    model.eval()
    logits = model(x)  # x: float N x {s.channels} x {s.height} x {s.width}, (pixels / 255 - mean) / std as in export.json

Inference only: drop-path and any auxiliary head of training are left out.
"""

import torch
{"import torch.nn.functional as F" + chr(10) if functional else ""}from torch import nn

IN_CHANNELS, NUM_CLASSES = {s.channels}, {s.num_classes}
'''
