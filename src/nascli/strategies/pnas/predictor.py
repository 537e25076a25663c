"""PNAS's accuracy predictor: an ensemble of small sequence models over a cell's tokens.

A cell is a sequence of (input, op) token pairs: two per block in the pnas space (PNAS reads
4b tokens: I1, O1, I2, O2 per block), one per live edge in nb201 (edge position, op). The
LSTM reads the pairs in order; the MLP averages per-block embeddings. Both end in a sigmoid
(accuracies are fractions). Each ensemble member is trained on 4/5 of the data (k-fold),
L1 loss and Adam, as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

Tokens = list[tuple[int, int]]  # (input token, op token) pairs


@dataclass
class PredictorConfig:
    kind: str = "auto"  # auto (the growth's measured best) | lstm | mlp | both (members alternate: lstm, mlp, ...)
    members: int = 5
    hidden: int = 100
    embedding: int = 100
    epochs: int = 60  # passes over the (small) training set at each refit
    lr: float = 0.005
    batch_size: int = 32


class LSTMPredictor(nn.Module):
    def __init__(self, n_inputs: int, n_ops: int, embedding: int, hidden: int):
        super().__init__()
        self.input_emb = nn.Embedding(n_inputs, embedding)
        self.op_emb = nn.Embedding(n_ops, embedding)
        self.lstm = nn.LSTM(2 * embedding, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, inputs, ops, lengths):
        x = torch.cat([self.input_emb(inputs), self.op_emb(ops)], dim=-1)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (h, _) = self.lstm(packed)
        return torch.sigmoid(self.head(h[-1])).squeeze(-1)


class MLPPredictor(nn.Module):
    def __init__(self, n_inputs: int, n_ops: int, embedding: int, hidden: int):
        super().__init__()
        self.input_emb = nn.Embedding(n_inputs, embedding)
        self.op_emb = nn.Embedding(n_ops, embedding)
        self.mlp = nn.Sequential(nn.Linear(2 * embedding, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 1))

    def forward(self, inputs, ops, lengths):
        x = torch.cat([self.input_emb(inputs), self.op_emb(ops)], dim=-1)
        mask = (torch.arange(x.shape[1])[None, :] < lengths[:, None]).float().unsqueeze(-1)
        mean = (x * mask).sum(1) / lengths[:, None].clamp_min(1).float()
        return torch.sigmoid(self.mlp(mean)).squeeze(-1)


MODELS = {"lstm": LSTMPredictor, "mlp": MLPPredictor}


def batch(seqs: list[Tokens]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Token pairs padded with zeros into (inputs, ops, lengths); filled through numpy, one row at a time
    (element-wise tensor writes cost more than the predictor's training on NB201's small sets)."""
    lengths = [len(s) for s in seqs]
    pairs = np.zeros((len(seqs), max(lengths), 2), dtype=np.int64)
    for i, s in enumerate(seqs):
        if s:
            pairs[i, :len(s)] = s
    return (torch.from_numpy(pairs[..., 0].copy()), torch.from_numpy(pairs[..., 1].copy()),
            torch.tensor(lengths))


class Ensemble:
    """Members trained on k-fold complements; prediction = mean (and spread) over members."""

    def __init__(self, cfg: PredictorConfig, n_inputs: int, n_ops: int, seed: int, default_kind: str = "lstm"):
        self.kind = default_kind if cfg.kind == "auto" else cfg.kind
        if self.kind not in (*MODELS, "both"):
            from nascli.errors import UserError

            raise UserError(f"strategy.predictor.kind={cfg.kind} is unknown; use auto, lstm, mlp or both")
        self.cfg, self.n_inputs, self.n_ops, self.seed = cfg, n_inputs, n_ops, seed
        self.members: list[nn.Module] = []
        self.fits = 0

    def _new(self, i: int) -> nn.Module:
        torch.manual_seed(self.seed * 1000 + i)
        kind = ("lstm", "mlp")[i % 2] if self.kind == "both" else self.kind
        return MODELS[kind](self.n_inputs, self.n_ops, self.cfg.embedding, self.cfg.hidden)

    def fit(self, seqs: list[Tokens], targets: list[float]) -> dict[str, float]:
        """Refit every member from scratch on all data seen so far; returns the mean L1 before/after."""
        y = torch.tensor(targets, dtype=torch.float32)
        k = int(self.cfg.members)
        order = np.random.default_rng(self.seed + self.fits).permutation(len(seqs))
        folds = np.array_split(order, k)
        self.members = []
        before, after = [], []
        for i in range(k):
            # Each member leaves one fold out; a lone member (members=1) has no fold to leave out.
            train_idx = np.concatenate([f for j, f in enumerate(folds) if j != i]) if len(seqs) >= k > 1 else order
            model = self._new(i)
            # fused: one kernel per step for all parameters; per step, Adam's Python loop over a small model's
            # tensors cost more than its arithmetic (a refit measured 1.4x faster; it rounds differently).
            opt = torch.optim.Adam(model.parameters(), lr=self.cfg.lr, fused=True)
            gen = torch.Generator().manual_seed(self.seed * 7919 + i + self.fits)
            x_all = batch([seqs[j] for j in train_idx])
            y_all = y[torch.as_tensor(train_idx)]
            with torch.no_grad():
                before.append(float((model(*x_all) - y_all).abs().mean()))
            model.train()
            for _ in range(int(self.cfg.epochs)):
                perm = torch.randperm(len(train_idx), generator=gen)
                for s in range(0, len(perm), int(self.cfg.batch_size)):
                    idx = perm[s:s + int(self.cfg.batch_size)]
                    pred = model(x_all[0][idx], x_all[1][idx], x_all[2][idx])
                    loss = (pred - y_all[idx]).abs().mean()  # L1, as in PNAS
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
            model.eval()
            with torch.no_grad():
                after.append(float((model(*x_all) - y_all).abs().mean()))
            self.members.append(model)
        self.fits += 1
        return {"l1_before": float(np.mean(before)), "l1_after": float(np.mean(after))}

    @torch.no_grad()
    def predict(self, seqs: list[Tokens], chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation over members, as accuracy fractions."""
        if not self.members:
            raise RuntimeError("the predictor has not been fitted")
        preds = []
        for s in range(0, len(seqs), chunk):
            x = batch(seqs[s:s + chunk])
            preds.append(torch.stack([m(*x) for m in self.members]).numpy())
        allp = np.concatenate(preds, axis=1)
        return allp.mean(0), allp.std(0)

    def state_dict(self) -> dict:
        return {"members": [m.state_dict() for m in self.members], "n_inputs": self.n_inputs, "n_ops": self.n_ops,
                "fits": self.fits}

    def load_state_dict(self, state: dict) -> None:
        self.members = []
        for i, sd in enumerate(state["members"]):
            m = self._new(i)
            m.load_state_dict(sd)
            m.eval()
            self.members.append(m)
        self.fits = int(state.get("fits", 0))
