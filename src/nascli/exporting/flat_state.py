"""A view of a network whose parameters and buffers all sit on the root module, for `torch.export`.

Why: the module that `torch.export.load(path).module()` rebuilds fetches every parameter and buffer, on every
call, by walking the saved names through nested `nn.Module.__getattr__` calls. For nascli's deep cell networks
(names like `blocks.1.ops.0.paths.1.0.0.weight`) that walk cost about 1-2 ms per batch-1 forward on a 2-core
machine, 8-20% of the whole forward (bench/export_latency.py). Flat names make it one attribute per tensor.
The arithmetic is the network's own: `torch.func.functional_call` runs the original modules on the same
tensors, so the logits are bitwise those of the nested network.
"""

from __future__ import annotations

import torch
from torch import nn


def flat_name(name: str) -> str:
    return name.replace(".", "_")


class FlatState(nn.Module):
    """Holds `model`'s tensors under flat names and runs `model` on them. `model` itself is not a submodule,
    so export lifts each tensor once, under its flat name."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.names: list[str] = []
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            flat = flat_name(name)
            if hasattr(self, flat):
                raise RuntimeError(f"two tensors of the network flatten to the name {flat!r}")
            if isinstance(tensor, nn.Parameter):
                self.register_parameter(flat, tensor)
            else:
                self.register_buffer(flat, tensor)
            self.names.append(name)
        object.__setattr__(self, "model", model)  # not registered: its tensors are ours under flat names
        self.train(model.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state = {name: getattr(self, flat_name(name)) for name in self.names}
        return torch.func.functional_call(self.model, state, (x,))
