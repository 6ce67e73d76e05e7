"""Write the image grids a LightningModule offers (``log_images``) to the run dir and the loggers."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only

from tinymaskgit.pictures import save_grid


class ImageGridCallback(L.Callback):
    """Every ``every_n_epochs`` validation epochs, save ``pl_module.log_images(batch)`` as PNG grids.

    Files go to ``<run dir>/images/<name>_epoch<E>.png``; the grid is also sent to a WandB or TensorBoard
    logger when one is attached.
    """

    def __init__(self, every_n_epochs: int = 1, max_images: int = 16, nrow: int = 8) -> None:
        super().__init__()
        if every_n_epochs < 1:
            raise ValueError(f"callbacks.images.every_n_epochs must be >= 1, got {every_n_epochs}")
        self.every_n_epochs = every_n_epochs
        self.max_images = max_images
        self.nrow = nrow
        self._batch: tuple[torch.Tensor, torch.Tensor] | None = None

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if batch_idx == 0:
            self._batch = (batch[0][: self.max_images].detach(), batch[1][: self.max_images].detach())

    @rank_zero_only
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self._batch is None or not hasattr(pl_module, "log_images"):
            return
        epoch = trainer.current_epoch + 1
        if epoch % self.every_n_epochs and epoch != trainer.max_epochs:
            return
        out_dir = Path(trainer.default_root_dir) / "images"
        was_training = pl_module.training
        pl_module.eval()
        try:
            grids = pl_module.log_images(self._batch, max_images=self.max_images)  # type: ignore[operator]
        finally:
            pl_module.train(was_training)
        for name, images in grids.items():
            grid = save_grid(images.cpu(), out_dir / f"{name}_epoch{trainer.current_epoch:03d}.png", self.nrow)
            for logger in trainer.loggers:
                exp = getattr(logger, "experiment", None)
                if hasattr(logger, "log_image"):
                    logger.log_image(key=f"images/{name}", images=[grid], step=trainer.global_step)
                elif exp is not None and hasattr(exp, "add_image"):
                    exp.add_image(f"images/{name}", grid, trainer.global_step)
