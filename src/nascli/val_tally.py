"""Counting a classifier's val predictions, and the score of a network whose output ignores its input.

A weight-sharing estimator (SMASH's HyperNet, SNAS's supernet) scores a network by its val accuracy. A
network with no path from the input to the output (an NB201 cell whose edges into the output are all
`none`) gives every image the same logits and would score the share of one class, above networks that do
look at the image. Both estimators score it 0 and flag it, as the zero-cost proxies give it their least
value, so `nas rank` can count such cells instead of hiding them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ValTally:
    correct: int = 0
    seen: int = 0
    constant: bool = True  # every logit row so far equal to the first of its batch

    def add(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        self.constant = self.constant and bool((logits == logits[:1]).all())
        self.correct += (logits.argmax(1) == labels).sum().item()
        self.seen += len(labels)

    @property
    def accuracy(self) -> float:
        return 100.0 * self.correct / max(self.seen, 1)


def scored(accuracy: float, constant: bool) -> tuple[float, bool]:
    """(score, degenerate): the accuracy, or 0 for a network whose logits never depended on the image."""
    return (0.0, True) if constant else (accuracy, False)
