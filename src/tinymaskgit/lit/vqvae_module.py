"""Stage 1 training: reconstruction + VQ loss, optionally a PatchGAN discriminator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from tinymaskgit.inference import KEY
from tinymaskgit.lit.lr_schedule import run_schedule
from tinymaskgit.metrics.psnr import psnr
from tinymaskgit.models.config import as_dict
from tinymaskgit.models.discriminator import PatchDiscriminator, feature_matching_loss, hinge_d_loss, hinge_g_loss
from tinymaskgit.models.quantizer import codebook_stats
from tinymaskgit.models.vqvae import VQVAE

Batch = tuple[torch.Tensor, torch.Tensor]


class VQVAEModule(L.LightningModule):
    """Trains a VQVAE with loss = rec_weight * (MSE or L1) + vq_weight * VQ loss [+ lambda * GAN loss]
    [+ fm_weight * feature matching].

    One optimizer step per batch (so ``global_step``, ``disc_start`` and ``max_steps`` count batches), with
    Lightning's automatic optimisation and the Trainer's ``gradient_clip_val``. With a discriminator, one
    optimizer holds two parameter groups (VQ-VAE, discriminator) and one backward pass serves both: the
    generator term sees the discriminator with its parameters frozen, the discriminator term sees the
    reconstruction detached, so neither loss moves the other network.

    Args:
        net: the VQVAE to train.
        optimizer: a partial optimizer (``_partial_: true``) taking the parameter groups.
        rec_loss: 'mse' or 'l1'.
        disc_weight: weight of the generator's adversarial loss; 0 disables the discriminator.
        disc_start: training step (batch) from which the discriminator and its losses are used.
        disc_adaptive: scale the adversarial weight by ||grad rec_loss|| / ||grad g_loss|| at the decoder's last
            layer, as VQGAN does (Esser et al. 2021, eq. 7), so it neither swamps nor vanishes.
        fm_weight: weight of the feature-matching loss, the L1 distance between the discriminator's features of
            the image and of its reconstruction (``feature_matching_loss``); > 0 trains the discriminator
            (from ``disc_start``) even with ``disc_weight`` 0, which then only drops the hinge term.
        warmup_steps, min_lr_ratio: linear warm-up, then cosine decay to ``min_lr_ratio`` of the peak over the
            run's steps or, in a time-bounded run, its time (``lit.lr_schedule``); the defaults (0, 1.0) keep
            the rate constant, as VQGAN trains.
        channels_last: keep the convolutions' weights and the batches in channels_last (NHWC) memory, the layout
            oneDNN's and cuDNN's bf16 kernels prefer and the per-position channel norm reads without a copy. The
            same arithmetic in another layout: the results agree to rounding.
    """

    code_counts: torch.Tensor

    def __init__(
        self,
        net: VQVAE,
        optimizer: Callable[..., torch.optim.Optimizer],
        rec_loss: str = "mse",
        rec_weight: float = 1.0,
        vq_weight: float = 1.0,
        disc_weight: float = 0.0,
        disc_start: int = 2000,
        disc_channels: int = 64,
        disc_adaptive: bool = False,
        fm_weight: float = 0.0,
        warmup_steps: int = 0,
        min_lr_ratio: float = 1.0,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        if rec_loss not in ("mse", "l1"):
            raise ValueError(f"stage.module.rec_loss must be 'mse' or 'l1', got {rec_loss!r}")
        for key, value in (("disc_weight", disc_weight), ("fm_weight", fm_weight)):
            if value < 0:
                raise ValueError(f"stage.module.{key} must be >= 0 (0: off), got {value}")
        self.save_hyperparameters(ignore=["net", "optimizer"])
        self.net = net
        self.optimizer_factory = optimizer
        use_disc = disc_weight > 0 or fm_weight > 0
        self.discriminator = PatchDiscriminator(channels=disc_channels) if use_disc else None
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.to(memory_format=self.memory_format)  # Lightning's later move to the device keeps the layout
        k = net.codebook_size
        self.register_buffer("code_counts", torch.zeros(k, dtype=torch.long), persistent=False)

    @property
    def unused_parameters_early(self) -> bool:
        """True when some parameters get no gradient in the first steps (the discriminator before its start):
        DDP must then look for unused parameters."""
        return self.discriminator is not None and self.hparams.disc_start > 0

    # -- losses -----------------------------------------------------------------------------------------
    def _rec_loss(self, rec: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        rec = rec.float()
        return F.mse_loss(rec, x) if self.hparams.rec_loss == "mse" else F.l1_loss(rec, x)

    def _common_step(self, batch: Batch, stage: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = batch[0].contiguous(memory_format=self.memory_format)
        rec, q = self.net(x)
        rec_loss = self._rec_loss(rec, x)
        loss = self.hparams.rec_weight * rec_loss + self.hparams.vq_weight * q.vq_loss
        self.code_counts += torch.bincount(q.indices.flatten(), minlength=self.net.codebook_size)
        self.log_dict(
            {
                f"{stage}/rec_loss": rec_loss,
                f"{stage}/vq_loss": q.vq_loss,
                f"{stage}/commitment_loss": q.commitment_loss,
                f"{stage}/psnr": psnr(rec, x),
            },
            on_step=stage == "train",
            on_epoch=True,
            prog_bar=stage == "val",
            sync_dist=stage != "train",
            batch_size=x.shape[0],
        )
        return loss, rec, x

    def _disc_active(self) -> bool:
        return self.discriminator is not None and self.global_step >= self.hparams.disc_start

    def _adaptive_weight(self, rec_loss: torch.Tensor, g_loss: torch.Tensor) -> torch.Tensor:
        layers = self.net.decoder.out if hasattr(self.net.decoder, "out") else self.net.decoder.model
        assert isinstance(layers, torch.nn.Sequential)
        conv = layers[-1]
        assert isinstance(conv, torch.nn.Conv2d)
        last = conv.weight
        g_rec = torch.autograd.grad(rec_loss, last, retain_graph=True)[0]
        g_adv = torch.autograd.grad(g_loss, last, retain_graph=True)[0]
        return (g_rec.norm() / (g_adv.norm() + 1e-4)).clamp(0.0, 1e4).detach()

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        loss, rec, x = self._common_step(batch, "train")
        if self._disc_active():
            d = self.discriminator
            assert d is not None
            d.requires_grad_(False)  # the generator terms must not train the discriminator
            fake = d.features(rec)
            d.requires_grad_(True)
            real = d.features(x)
            g_loss = hinge_g_loss(fake[-1])
            weight = torch.tensor(self.hparams.disc_weight, device=self.device)
            if self.hparams.disc_adaptive and self.hparams.disc_weight > 0:
                weight = weight * self._adaptive_weight(self._rec_loss(rec, x), g_loss)
            d_loss = hinge_d_loss(real[-1], d(rec.detach()))
            loss = loss + weight * g_loss + d_loss
            logs = {"train/g_loss": g_loss, "train/d_loss": d_loss, "train/disc_weight": weight}
            if self.hparams.fm_weight > 0:
                # the image's features are the target: the discriminator learns only from its hinge loss
                fm_loss = feature_matching_loss(fake[:-1], [f.detach() for f in real[:-1]])
                loss = loss + self.hparams.fm_weight * fm_loss
                logs["train/fm_loss"] = fm_loss
            self.log_dict(logs)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._common_step(batch, "val")

    # -- codebook usage per epoch ------------------------------------------------------------------------
    def _log_codebook(self, stage: str) -> None:
        counts = self.trainer.strategy.reduce(self.code_counts.clone(), reduce_op="sum")
        usage, perplexity = codebook_stats(counts)
        self.log_dict({f"{stage}/codebook_usage": usage, f"{stage}/perplexity": perplexity}, prog_bar=False)
        self.code_counts.zero_()

    def on_train_epoch_start(self) -> None:
        self.code_counts.zero_()

    def on_train_epoch_end(self) -> None:
        self._log_codebook("train")

    def on_validation_epoch_start(self) -> None:
        self._train_counts = self.code_counts.clone()
        self.code_counts.zero_()

    def on_validation_epoch_end(self) -> None:
        self._log_codebook("val")
        self.code_counts.copy_(self._train_counts)

    # -- optimisation and checkpoints -------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        groups = [{"params": [p for p in self.net.parameters() if p.requires_grad], "name": "vqvae"}]
        if self.discriminator is not None:
            groups.append({"params": list(self.discriminator.parameters()), "name": "discriminator"})
        opt = self.optimizer_factory(params=groups)
        if self.hparams.warmup_steps == 0 and self.hparams.min_lr_ratio == 1.0:
            return opt  # constant rate
        sched = run_schedule(self.trainer, opt, self.hparams.warmup_steps, self.hparams.min_lr_ratio)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step", "name": "train/lr"}}

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        # each network is clipped on its own: the discriminator's gradients must not shrink the VQ-VAE's step
        if gradient_clip_val:
            for group in optimizer.param_groups:
                torch.nn.utils.clip_grad_norm_(group["params"], gradient_clip_val)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[KEY] = {"stage": "vqvae", "net_config": as_dict(self.net.config)}

    @torch.no_grad()
    def log_images(self, batch: Batch, max_images: int = 16) -> dict[str, torch.Tensor]:
        """Originals and reconstructions interleaved column-wise: (2 * n, 3, S, S) in [-1, 1]."""
        x = batch[0][:max_images].to(self.device)
        rec, _ = self.net(x.contiguous(memory_format=self.memory_format))
        pairs = torch.stack([x, rec], dim=1)  # (n, 2, 3, S, S)
        return {"reconstructions": pairs.flatten(0, 1)}
