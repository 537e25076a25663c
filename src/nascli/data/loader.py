"""Batches from in-memory tensors, with augmentation done on whole batches.

No per-sample PIL work and no worker processes: crop, flip and cutout are tensor ops on
the batch, on whatever device the data lives on. Randomness comes from an explicit CPU
generator so runs are reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class Augment:
    crop_padding: int = 0
    flip: bool = False
    cutout: int = 0

    @property
    def active(self) -> bool:
        return bool(self.crop_padding or self.flip or self.cutout)


def random_crop(x: torch.Tensor, pad: int, g: torch.Generator) -> torch.Tensor:
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (n,), generator=g).to(x.device)
    ox = torch.randint(0, 2 * pad + 1, (n,), generator=g).to(x.device)
    rows = (oy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


def random_flip(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    mask = (torch.rand(x.shape[0], generator=g) < 0.5).to(x.device)
    return torch.where(mask[:, None, None, None], x.flip(3), x)


def cutout(x: torch.Tensor, length: int, g: torch.Generator) -> torch.Tensor:
    """Zero one length x length square per image (centre uniform, clipped at the border)."""
    n, _, h, w = x.shape
    cy = torch.randint(0, h, (n,), generator=g).to(x.device)
    cx = torch.randint(0, w, (n,), generator=g).to(x.device)
    ys = torch.arange(h, device=x.device)
    xs = torch.arange(w, device=x.device)
    in_y = (ys[None] >= (cy - length // 2)[:, None]) & (ys[None] < (cy + length - length // 2)[:, None])
    in_x = (xs[None] >= (cx - length // 2)[:, None]) & (xs[None] < (cx + length - length // 2)[:, None])
    hole = in_y[:, :, None] & in_x[:, None, :]
    return x * (~hole)[:, None].to(x.dtype)


class TensorLoader:
    """Iterate (images, labels) batches: float, normalised, augmented if asked."""

    def __init__(self, split, batch_size: int, mean, std, shuffle: bool = False, augment: Augment | None = None,
                 generator: torch.Generator | None = None, max_batches: int | None = None,
                 channels_last: bool = False):
        self.x, self.y = split.x, split.y
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.augment = augment if augment is not None and augment.active else None
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.max_batches = max_batches
        self.channels_last = channels_last
        self._order: torch.Tensor | None = None  # the current pass's order (None between passes)
        self._next = 0
        self._resume: tuple[torch.Tensor, int] | None = None
        device = self.x.device
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)

    def __len__(self) -> int:
        n = -(-len(self.y) // self.batch_size)
        return min(n, self.max_batches) if self.max_batches else n

    def __iter__(self):
        if self._resume is not None:
            order, start = self._resume
            self._resume = None
        else:
            n = len(self.y)
            order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
            start = 0
        self._order = order
        order = order.to(self.x.device)
        for b in range(start, len(self)):
            self._next = b + 1
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            yield self.transform(self.x[idx]), self.y[idx]
        self._order, self._next = None, 0

    def state_dict(self) -> dict:
        """Where the current pass is (its order and the next batch), for a mid-epoch resume. The generator's
        state is saved by whoever owns it (loaders may share one)."""
        return {"order": self._order, "next": self._next}

    def load_state_dict(self, state: dict) -> None:
        """The next iteration continues the saved pass instead of starting a new one."""
        self._resume = (state["order"], int(state["next"])) if state.get("order") is not None else None

    def transform(self, x_uint8: torch.Tensor) -> torch.Tensor:
        x = x_uint8.float().div_(255.0)
        aug = self.augment
        if aug is not None and aug.crop_padding:
            x = random_crop(x, aug.crop_padding, self.generator)  # pads with black, before normalising
        if aug is not None and aug.flip:
            x = random_flip(x, self.generator)
        x = (x - self.mean) / self.std
        if aug is not None and aug.cutout:
            x = cutout(x, aug.cutout, self.generator)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x
