"""PNAS (Liu et al. 2018): progressive cell growth guided by a learned accuracy predictor.

    S_1 = every level-1 cell; evaluate all; fit the predictor on (cell, accuracy)
    for b = 2..B: expand every cell of the beam by one step; rank the expansions with the
                  predictor; keep the top K; evaluate them; refit the predictor on everything
    then (`rounds` > 0, an extension): K more of level B's expansions per round, refitting in between
    return the evaluated cells of every level, ranked by their measured score

The beam of level b is the K evaluated cells of level b (all of S_1 at level 1), as in the
paper. Scores are final-epoch val accuracies (or table lookups), never the best epoch. How a cell
grows (blocks, NB201 nodes or edges) is the growth's business (growth.py).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from nascli.arch import Arch
from nascli.errors import UserError
from nascli.progress import progress_bar
from nascli.strategies.base import Candidate, SearchContext, TrainedStrategy, register_strategy
from nascli.strategies.evaluators import evaluator_class
from nascli.strategies.pnas.growth import growth_for
from nascli.strategies.pnas.predictor import Ensemble, PredictorConfig


@dataclass
class PnasConfig:
    name: str = "pnas"
    levels: int = 3  # B: the number of blocks (pnas) or live edges (nb201) the search grows to
    beam: int = 8  # K: cells kept (and evaluated) per level after level 1
    epochs: int = 3  # child training epochs (train evaluator)
    evaluator: str = "train"  # train | table
    growth: str = "auto"  # auto: the space's default (pnas: blocks, nb201: nodes) | edges (nb201)
    max_evaluations: int | None = None  # stop once this many cells were evaluated (search-efficiency runs)
    rounds: int = 0  # after the last level: this many more rounds of K of its expansions, refitting in between
    predictor: PredictorConfig = field(default_factory=PredictorConfig)


def correlations(pred: np.ndarray, truth: np.ndarray) -> dict[str, float | None]:
    ok = np.isfinite(pred) & np.isfinite(truth)
    if ok.sum() < 3 or np.ptp(pred[ok]) == 0 or np.ptp(truth[ok]) == 0:
        return {"spearman": None, "kendall": None, "n": int(ok.sum())}
    return {"spearman": float(stats.spearmanr(pred[ok], truth[ok]).statistic),
            "kendall": float(stats.kendalltau(pred[ok], truth[ok]).statistic), "n": int(ok.sum())}


@register_strategy("pnas")
class Pnas(TrainedStrategy):
    name = "pnas"
    Config = PnasConfig
    spaces = ("pnas", "nb201")
    trained = "predictor"
    estimator = "the predictor ensemble's mean accuracy"

    def __init__(self, cfg):
        super().__init__(cfg)
        self.predictor: Ensemble | None = None
        self._replay: dict[str, Candidate] = {}

    def resume(self, state: dict) -> None:
        # Evaluations are the expensive, deterministic part (each candidate trains from its own seed):
        # a resumed search replays the growth and predictor fits and takes these evaluations from the
        # checkpoint instead of training them again, muted until it passes the checkpoint.
        self._replay = {d["arch"]["arch_id"]: Candidate.from_plain(d) for d in state["evaluated"]}

    def setup(self, ctx: SearchContext) -> None:
        self._check(ctx)

    def _check(self, ctx: SearchContext):
        cfg = self.cfg
        growth = growth_for(ctx.space, str(self.cfg.get("growth", "auto")))
        if not 1 <= int(cfg.levels) <= growth.max_level:
            raise UserError(f"strategy.levels={cfg.levels} is out of range for space {ctx.space.name}: "
                            f"1..{growth.max_level}")
        if int(cfg.beam) < 1 or int(cfg.epochs) < 1:
            raise UserError("strategy.beam and strategy.epochs must be at least 1")
        evaluator = evaluator_class(cfg.evaluator)(cfg)
        evaluator.check(ctx)
        return growth, evaluator

    def search(self, ctx: SearchContext) -> list[Candidate]:
        cfg = self.cfg
        growth, evaluator = self._check(ctx)
        self.predictor = Ensemble(cfg.predictor, growth.n_inputs, growth.n_ops, ctx.seed, growth.predictor)
        budget = {"evaluations": 0, "seconds": 0.0}
        limit = int(cfg.max_evaluations) if cfg.max_evaluations else None
        seen: dict[str, Candidate] = {}
        order: list[Candidate] = []  # evaluation order
        levels_out = []

        replay = self._replay
        ctx.muted = bool(replay)

        def evaluate(cells: list[Arch], level: int, predicted: dict[str, float]) -> list[Candidate]:
            if limit is not None:
                cells = cells[: max(limit - budget["evaluations"], 0)]
            # A resumed search takes the first evaluations from its checkpoint; the rest are evaluated,
            # in parallel where the evaluator allows it, and taken in order.
            cached = [(i, replay.pop(a.arch_id)) for i, a in enumerate(cells) if a.arch_id in replay]
            fresh = cells[len(cached):]
            out = []
            with progress_bar(f"level {level}: evaluating", len(cells)) as advance:
                started = time.perf_counter()
                evaluated = ((len(cached) + i, c) for i, c in evaluator.evaluate_many(fresh, ctx))
                for i, cand in itertools.chain(cached, evaluated):
                    from_checkpoint = i < len(cached)
                    arch = cand.arch
                    budget["seconds"] += time.perf_counter() - started
                    started = time.perf_counter()
                    budget["evaluations"] += 1
                    cand.extra.update(level=level, evaluation=budget["evaluations"],
                                      predicted=predicted.get(arch.arch_id))
                    seen[arch.arch_id] = cand
                    order.append(cand)
                    out.append(cand)
                    if from_checkpoint:
                        ctx.muted = bool(replay)  # past the checkpoint, records are new again
                    else:
                        ctx.checkpoint(lambda: {"evaluated": [c.to_plain() for c in order], "level": level},
                                       boundary=True)
                    advance(1)
            return out

        def fit() -> dict:
            ok = [c for c in order if c.status == "ok" and math.isfinite(c.score)]
            return self.predictor.fit([growth.tokens(c.arch) for c in ok], [c.score / 100.0 for c in ok])

        beam = evaluate(growth.level1(), 1, {})
        loss = fit()
        self._log_level(ctx, growth, 1, beam, order, None, loss, budget, 0, None)
        levels_out.append(beam)
        last = int(cfg.levels)
        parents = beam
        # Levels 2..B, then `rounds` more rounds at level B: the same parents' expansions, K more at a time,
        # picked by the predictor refitted on everything evaluated so far.
        steps = [(b, False) for b in range(2, last + 1)] + [(last, True)] * int(cfg.get("rounds", 0) or 0)
        round_ = 0
        for level, again in steps:
            if limit is not None and budget["evaluations"] >= limit:
                break
            if not again:
                parents = beam
            expansions: dict[str, Arch] = {}
            for cand in parents:
                for child in growth.expand(cand.arch):
                    if child.arch_id not in seen:
                        expansions.setdefault(child.arch_id, child)
            if not expansions:
                break
            cells = list(expansions.values())
            mean, spread = self.predictor.predict([growth.tokens(a) for a in cells])
            # With a table, extrapolation is also measured over every expansion, not only the K picked
            # (their range is restricted to what the predictor liked).
            over_all = self._over_all(ctx, cells, mean)
            # Stable sort on (-prediction, arch_id): ties never depend on dict order.
            ranked = sorted(range(len(cells)), key=lambda i: (-mean[i], cells[i].arch_id))[: int(cfg.beam)]
            chosen = [cells[i] for i in ranked]
            predicted = {cells[i].arch_id: float(mean[i]) * 100 for i in ranked}
            beam = evaluate(chosen, level, predicted)
            # Extrapolation b-1 -> b: predictions made before the predictor saw these cells.
            truth = np.array([c.score for c in beam])
            pred = np.array([predicted[c.arch.arch_id] for c in beam])
            extrapolation = correlations(pred, truth)
            loss = fit()
            round_ = round_ + 1 if again else 0
            self._log_level(ctx, growth, level, beam, order, extrapolation, loss, budget, len(cells), over_all,
                            round_)
            if again:  # more cells of the last level: one panel, one levels/ file per round
                levels_out[-1] = levels_out[-1] + beam
            else:
                levels_out.append(beam)
        ctx.muted = False
        ctx.log(event="budget", **budget)
        self._plot(ctx, levels_out)
        return order

    @staticmethod
    def _over_all(ctx, cells: list[Arch], predicted: np.ndarray) -> dict | None:
        if ctx.benchmark is None:
            return None
        truth = np.array([np.nan if (v := ctx.truth(a)) is None else float(v) for a in cells])
        return correlations(np.asarray(predicted, dtype=float), truth)

    def _log_level(self, ctx, growth, level, beam, order, extrapolation, loss, budget, expansions,
                   over_all, round_: int = 0) -> None:
        ok = [c for c in order if c.status == "ok" and math.isfinite(c.score)]
        fitted, _ = self.predictor.predict([growth.tokens(c.arch) for c in ok])
        fitted = {c.arch.arch_id: float(p) * 100 for c, p in zip(ok, fitted, strict=True)}
        # Fit quality on every cell seen so far: the paper's "train" correlation.
        train_corr = correlations(np.array([fitted[c.arch.arch_id] for c in ok]), np.array([c.score for c in ok]))
        scores = [c.score for c in beam if c.status == "ok"]
        ctx.log(event="level", level=level, round=round_, evaluated=len(beam), expansions=expansions,
                best=max(scores, default=None), predictor_train=train_corr, predictor_extrapolation=extrapolation,
                predictor_extrapolation_all=over_all,
                **loss, evaluations=budget["evaluations"], evaluation_seconds=round(budget["seconds"], 3))
        if ctx.run is not None:
            import pandas as pd

            rows = [{"arch_id": c.arch.arch_id, "level": level, "score": c.score, "status": c.status,
                     "predicted_before": c.extra.get("predicted"), "fitted_after": fitted.get(c.arch.arch_id),
                     "description": ctx.space.describe(c.arch)} for c in beam]
            name = f"level_{level}" + (f"_round_{round_}" if round_ else "")
            ctx.run.write_csv(f"levels/{name}.csv", pd.DataFrame(rows))

    def _plot(self, ctx, levels_out) -> None:
        if ctx.run is None:
            return
        from nascli.strategies.pnas.figures import pnas_levels_figure

        ctx.run.save_plot("predicted_vs_true.png", pnas_levels_figure(levels_out))

    def score(self, archs: Sequence[Arch], ctx: SearchContext) -> list[float]:
        return self.score_details(archs, ctx)[0]

    def score_details(self, archs: Sequence[Arch], ctx: SearchContext) -> tuple[list[float], list[dict]]:
        """Ensemble mean prediction (accuracy %), and the members' spread (std, points) as its uncertainty."""
        growth = growth_for(ctx.space, str(self.cfg.get("growth", "auto")))
        if self.predictor is None:
            state = self.restored_state()
            self.predictor = Ensemble(self.cfg.predictor, growth.n_inputs, growth.n_ops, ctx.seed, growth.predictor)
            self.predictor.load_state_dict(state["predictor"])
        mean, spread = self.predictor.predict([growth.tokens(a) for a in archs])
        return [float(m) * 100 for m in mean], [{"spread": float(s) * 100} for s in spread]

    def live_state(self) -> dict | None:
        return None if self.predictor is None else {"predictor": self.predictor.state_dict()}

    def drop_live(self) -> None:
        self.predictor = None
