"""Stage 2 training: masked visual token modelling (Chang et al. 2022, sec. 3.1) with CFG label dropout."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from tinymaskgit.data.images import to_float
from tinymaskgit.errors import ConfigError
from tinymaskgit.inference import KEY, MaskGIT
from tinymaskgit.lit.lr_schedule import run_schedule
from tinymaskgit.models.config import as_dict
from tinymaskgit.models.tokenizer import Tokenizer
from tinymaskgit.models.transformer import MaskGITTransformer
from tinymaskgit.sampling.decode import settings_from
from tinymaskgit.sampling.generate import generate
from tinymaskgit.sampling.schedules import get_schedule

Batch = tuple[torch.Tensor, torch.Tensor]


def training_mask(
    schedule: Callable[[torch.Tensor], torch.Tensor],
    b: int,
    n: int,
    device: torch.device,
    generator: torch.Generator | None = None,
    min_ratio: float = 0.0,
) -> torch.Tensor:
    """(B, N) bool: per sample r ~ U(0, 1) and exactly ceil(max(gamma(r), min_ratio) * N) positions (at least 1)
    masked. ``min_ratio`` > 0 clips the masking ratio from below (the ``min_masking_rate`` of Muse-style training):
    the nearly-unmasked inputs that sampling never shows the transformer's first steps are drawn no more."""
    r = torch.rand(b, device=device, generator=generator)
    n_mask = torch.ceil(schedule(r).clamp(min=min_ratio) * n).clamp(1, n).long()  # (B,)
    rank = torch.rand(b, n, device=device, generator=generator).argsort(1).argsort(1)  # random permutation
    return rank < n_mask[:, None]


class MaskGITModule(L.LightningModule):
    """Trains a MaskGITTransformer on the tokens of a frozen tokenizer (kept in the checkpoint for sampling).

    Args:
        net: the transformer.
        tokenizer: the frozen tokenizer (VQVAE or lab VQGAN), used to show samples and saved with the weights.
        optimizer: partial optimizer taking the parameters.
        schedule: the mask schedule name (cosine, arccos, linear, square).
        label_drop: probability of replacing the class by the null class (CFG training).
        loss_on_all: cross-entropy on every token instead of the masked ones only.
        min_mask_ratio: in training, mask at least this share of the tokens (validation masks as gamma says, so
            its cross-entropies compare across values).
        warmup_steps: linear warm-up, then cosine decay to ``min_lr_ratio`` of the peak.
        sample: settings for the sample grids (steps, cfg_weight, temperature, n_per_class).
    """

    def __init__(
        self,
        net: MaskGITTransformer,
        tokenizer: Tokenizer,
        optimizer: Callable[..., torch.optim.Optimizer],
        schedule: str = "cosine",
        label_drop: float = 0.1,
        loss_on_all: bool = False,
        min_mask_ratio: float = 0.0,
        label_smoothing: float = 0.1,
        warmup_steps: int = 500,
        min_lr_ratio: float = 0.1,
        compile: bool = False,
        class_names: list[str] | None = None,
        sample: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        get_schedule(schedule)
        if not 0 <= label_drop <= 1:
            raise ValueError(f"stage.module.label_drop must be in [0, 1], got {label_drop}")
        if isinstance(min_mask_ratio, bool) or not 0 <= min_mask_ratio < 1:
            raise ValueError(
                f"stage.module.min_mask_ratio must be in [0, 1) (0: the schedule's ratios), got {min_mask_ratio!r}"
            )
        self.save_hyperparameters(ignore=["net", "tokenizer", "optimizer"])
        self.net = net
        self.tokenizer = tokenizer.eval().requires_grad_(False)
        self.optimizer_factory = optimizer
        self.gamma = get_schedule(schedule)
        self.class_names = list(class_names or [])
        self.sample_settings = dict(sample or {})
        try:  # checked now, not at the first image grid
            values = {k: v for k, v in self.sample_settings.items() if k != "n_per_class"}
            self.decode_settings = settings_from({**values, "schedule": schedule})
        except ValueError as e:
            raise ConfigError(f"stage.module.sample: {e}") from None
        if compile:
            self.net.compile()

    def train(self, mode: bool = True) -> MaskGITModule:
        super().train(mode)
        self.tokenizer.eval()  # frozen: never in training mode
        return self

    def on_fit_start(self) -> None:
        # Lightning warns of any module in eval mode when training starts ("may lead to unexpected behavior"):
        # the frozen tokenizer is, on purpose. Silenced for exactly its count of modules, so that any other
        # module left in eval mode still shows the warning.
        n = sum(1 for _ in self.tokenizer.modules())
        warnings.filterwarnings("ignore", message=rf"Found {n} module\(s\) in eval mode at the start of training")

    # -- masked visual token modelling ------------------------------------------------------------------
    def _common_step(self, batch: Batch, stage: str, generator: torch.Generator | None = None) -> torch.Tensor:
        tokens, labels = batch  # (B, N), (B,)
        b, n = tokens.shape
        min_ratio = self.hparams.min_mask_ratio if stage == "train" else 0.0
        mask = training_mask(self.gamma, b, n, tokens.device, generator, min_ratio)  # (B, N)
        inputs = tokens.masked_fill(mask, self.net.mask_token_id)
        class_ids = labels.clone()
        if self.net.num_classes == 0:
            class_ids.fill_(self.net.null_class_id)
        elif stage == "train" and self.hparams.label_drop > 0:
            drop = torch.rand(b, device=tokens.device) < self.hparams.label_drop
            class_ids = class_ids.masked_fill(drop, self.net.null_class_id)
        logits = self.net(inputs, class_ids)  # (B, N, K)
        target = mask if not self.hparams.loss_on_all else torch.ones_like(mask)
        loss = F.cross_entropy(logits[target].float(), tokens[target], label_smoothing=self.hparams.label_smoothing)
        on_step, sync = stage == "train", stage != "train"
        logs = {f"{stage}/loss": loss, f"{stage}/masked_acc": (logits[mask].argmax(-1) == tokens[mask]).float().mean()}
        self.log_dict(logs, on_step=on_step, on_epoch=True, prog_bar=True, sync_dist=sync, batch_size=b)
        # The training loss may cover every token and be smoothed; the masked tokens' plain cross-entropy is the
        # number that says what stage 2 has learned (ln K for a uniform guess), for either branch of CFG.
        extra = {f"{stage}/masked_ce": F.cross_entropy(logits[mask].float(), tokens[mask]).detach()}
        if stage == "val" and self.net.num_classes > 0:
            uncond = self.net(inputs, torch.full_like(class_ids, self.net.null_class_id))[mask]
            extra[f"{stage}/uncond_masked_ce"] = F.cross_entropy(uncond.float(), tokens[mask])
            extra[f"{stage}/uncond_masked_acc"] = (uncond.argmax(-1) == tokens[mask]).float().mean()
        self.log_dict(extra, on_step=on_step, on_epoch=True, sync_dist=sync, batch_size=b)
        return loss

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self._common_step(batch, "train")

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        # the same masks every epoch, so the val losses are comparable across epochs
        g = torch.Generator(device=batch[0].device).manual_seed(batch_idx)
        self._common_step(batch, "val", generator=g)

    # -- optimisation ------------------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        decay: list[torch.nn.Parameter] = []
        no_decay: list[torch.nn.Parameter] = []
        for name, p in self.net.named_parameters():
            (decay if p.ndim >= 2 and "emb" not in name else no_decay).append(p)
        groups = [{"params": decay, "name": "decay"}, {"params": no_decay, "weight_decay": 0.0, "name": "no_decay"}]
        opt = self.optimizer_factory(params=groups)
        sched = run_schedule(self.trainer, opt, self.hparams.warmup_steps, self.hparams.min_lr_ratio)
        # Lightning's LearningRateMonitor (added by train() when a logger is on) logs train/lr/<group>
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step", "name": "train/lr"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[KEY] = {
            "stage": "maskgit",
            "net_config": as_dict(self.net.config),
            "tokenizer_config": as_dict(self.tokenizer.config),
            "class_names": self.class_names,
            "schedule": self.hparams.schedule,
        }

    # -- pictures ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def log_images(self, batch: Batch | None = None, max_images: int = 16) -> dict[str, torch.Tensor]:
        """A sample grid through the same ``generate()`` as ``sample``: a row of ``n_per_class`` samples per class
        (two rows if unconditional)."""
        per_row = int(self.sample_settings.get("n_per_class", 8))
        rows = self.net.num_classes or 2
        class_ids = torch.arange(rows).repeat_interleave(per_row) if self.net.num_classes else None
        settings = self.decode_settings
        bundle = MaskGIT(self.net, self.tokenizer, self.class_names, {})
        res = generate(bundle, class_ids, rows * per_row, settings, batch_size=rows * per_row, seed=0)
        return {"samples": to_float(res.images)}
