"""`tracking=tensorboard`: TensorBoard event files under <run>/tb (or `tracking.dir`).

Scalars per record (epoch, candidate, level: `<event>/<key>` at its epoch / evaluation / level), and at the end
every figure the run drew (α heatmaps, curves, predictor panels) as images, the selected architecture's cells
as figures, and the hyperparameters with the final metrics (TensorBoard's HPARAMS tab).
"""

from __future__ import annotations

from dataclasses import dataclass

from nascli.tracking.base import Tracker, final_metrics, flat_params, register_tracker


@dataclass
class TensorBoardConfig:
    name: str = "tensorboard"
    dir: str | None = None  # where the event files go; null: <run>/tb


@register_tracker("tensorboard")
class TensorBoardTracker(Tracker):
    Config = TensorBoardConfig
    engine = ("tensorboard", "tensorboard")

    def start(self, run, cfg) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(self.cfg.dir or run.path / "tb"))
        self.params = flat_params(cfg)

    def scalars(self, event, values, step) -> None:
        for key, value in values.items():
            self.writer.add_scalar(f"{event}/{key}", value, step)

    def close(self, run) -> None:
        import json

        import numpy as np
        from PIL import Image

        from nascli.arch import Arch
        from nascli.reporting.cells import cell_figures

        for png in sorted((run.path / "plots").glob("*.png")):
            image = np.asarray(Image.open(png).convert("RGB"))
            self.writer.add_image(f"plots/{png.stem}", image, dataformats="HWC")
        arch_path = run.path / "arch.json"
        if arch_path.exists():
            doc = json.loads(arch_path.read_text())
            for cell_type, fig in cell_figures(Arch(doc["space"], doc["genotype"])).items():
                self.writer.add_figure(f"cell/{cell_type}", fig)
        metrics = final_metrics(run)
        if metrics:
            # hparams values must be scalars or strings; long ones (lists) are kept as text
            self.writer.add_hparams({k: v[:250] for k, v in self.params.items()}, metrics, run_name=".")
        self.writer.close()
