"""Accuracy of a supernet, and of one child inside it with BN statistics recomputed.

A child drawn from a weight-sharing supernet must not be judged with BN statistics that
averaged over every other child (strategies.md section 4.2): before scoring, its statistics are
recomputed on training batches, then the supernet's own are restored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import islice

import torch

from nascli.supernet.networks import Sample, Supernet
from nascli.val_tally import ValTally, scored


def _tally(net: Supernet, batches: Iterable, samples: Callable[[], dict[str, Sample]] | dict[str, Sample],
           runtime) -> ValTally:
    net.eval()
    tally = ValTally()
    for x, y in batches:
        s = samples() if callable(samples) else samples
        with runtime.autocast():
            tally.add(net(x, s), y)
    return tally


@torch.no_grad()
def accuracy(net: Supernet, batches: Iterable, samples: Callable[[], dict[str, Sample]] | dict[str, Sample],
             runtime) -> float:
    was_training = net.training
    acc = _tally(net, batches, samples, runtime).accuracy
    net.train(was_training)
    return acc


@torch.no_grad()
def supernet_accuracy(net: Supernet, batches: Iterable, samples: Callable[[], dict[str, Sample]], passes: int,
                      runtime) -> float:
    """Val accuracy of the supernet itself: a fresh sample per batch, `passes` passes averaged.

    BN uses each batch's own statistics: the running averages mix every child sampled
    during training, and judging the parent with them would understate it. The supernet's
    running statistics are left as they were.
    """
    was_training = net.training
    accs = []
    with net.recalibrating():
        net.train()
        for _ in range(passes):
            tally = ValTally()
            for x, y in batches:
                with runtime.autocast():
                    tally.add(net(x, samples()), y)
            accs.append(tally.accuracy)
    net.train(was_training)
    return sum(accs) / len(accs)


@torch.no_grad()
def recalibrate(net: Supernet, batches: Iterable, samples: dict[str, Sample], num_batches: int, runtime) -> None:
    net.train()
    for i, (x, _) in enumerate(islice(batches, num_batches)):
        net.set_bn_momentum(1.0 / (i + 1))  # cumulative average over the recalibration batches
        with runtime.autocast():
            net(x, samples)


@torch.no_grad()
def _child_tally(net: Supernet, samples: dict[str, Sample], calib_batches: Iterable, val_batches: Iterable,
                 num_batches: int, runtime) -> ValTally:
    was_training = net.training
    with net.recalibrating():
        recalibrate(net, calib_batches, samples, num_batches, runtime)
        tally = _tally(net, val_batches, samples, runtime)
    net.train(was_training)
    return tally


def child_accuracy(net: Supernet, samples: dict[str, Sample], calib_batches: Iterable, val_batches: Iterable,
                   num_batches: int, runtime) -> float:
    """Val accuracy of a one-hot child using the supernet's weights and its own BN statistics."""
    return _child_tally(net, samples, calib_batches, val_batches, num_batches, runtime).accuracy


def child_score(net: Supernet, samples: dict[str, Sample], calib_batches: Iterable, val_batches: Iterable,
                num_batches: int, runtime) -> tuple[float, bool]:
    """child_accuracy, and whether the child is degenerate (`nascli.val_tally`): a degenerate child scores 0."""
    tally = _child_tally(net, samples, calib_batches, val_batches, num_batches, runtime)
    return scored(tally.accuracy, tally.constant)
