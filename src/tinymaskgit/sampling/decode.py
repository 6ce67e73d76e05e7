"""Iterative parallel decoding (Chang et al. 2022, sec. 3.2), for generation and inpainting alike.

Dimension legend: B batch, N tokens per image, K codebook size, T steps.

Conventions (the paper's by default; flags give the MaskGIT lab's where it differs):
- Each step samples one token per unknown position from softmax(logits) (``sample_tokens=False``: argmax);
  ``token_temperature`` divides the logits of that draw and ``top_k`` keeps only the k likeliest codes in it
  (defaults 1 and None: the model's own distribution). Both change the draw only, not the confidence below.
- Confidence = log p(sampled token) + tau_k * Gumbel noise, tau_k = temperature * (1 - k / T), k = 0..T-1
  (``gumbel_on='prob'``: p instead of log p). Known and already-decided positions get +inf.
- After step k, ceil((1 - gamma((k + 1) / T)) * M) of the M initially unknown tokens are decided (at least
  one more per step while any remain); the schedule counts the unknown tokens, not the whole grid.
  ``step_counts='valeoai'`` takes valeoai's (and the Tiny MaskGIT report's) rule instead: step k decides a
  share of M proportional to gamma(r_k), r_k = linspace(1, 0, T) (``schedules.decided_counts``).
- ``order='halton'`` decides positions in the fixed Halton order (``halton.py``) instead of by confidence;
  the tokens there are still drawn from the model.
- ``confidence='conditional'``: the confidence is log p of the drawn token under the conditional model rather
  than the guided distribution, whose log-probabilities spread about (1 + w) times wider than the Gumbel
  noise and would fix the same fill order for every sample of a class.
- Tokens known at the start never change; decided tokens are never re-masked.
- Sweet spot t < T: stop after t steps and fill what is still masked with that step's prediction.
- CFG: logits = (1 + w) * cond - w * uncond (w = 0: the conditional model); ``cfg_schedule='linear'``
  ramps w from w/T at the first step to w at the last; ``'linear0'`` (valeoai's) from 0 at the first step
  to w at the last, w * k / (T - 1), so the first tokens come from the unguided model.
- ``precision='bf16'`` runs the transformer under bfloat16 autocast (about 2x on a GPU or a CPU with
  AVX512-BF16, but 10-25x slower on a CPU that emulates bfloat16); ``'auto'`` uses bfloat16 only where it is
  native (``tinymaskgit.precision``); the softmax, sampling and confidences stay in float32. The default '32' is
  exact.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from tinymaskgit.models.transformer import MaskGITTransformer
from tinymaskgit.precision import AUTO, sampler_bf16, slow_bf16_warning
from tinymaskgit.sampling.halton import halton_priority
from tinymaskgit.sampling.schedules import STEP_COUNTS, decided_counts, get_schedule

GUMBEL_ON = ("logp", "prob")
CFG_SCHEDULES = ("constant", "linear", "linear0")
ORDERS = ("confidence", "halton")
CONFIDENCES = ("guided", "conditional")
PRECISIONS = ("32", "bf16", AUTO)


@dataclass
class DecodeSettings:
    """Sampler settings, defined once: the names are the config keys of sample, inpaint, evaluate, the sweep,
    the page and the training image callback (``stage.module.sample``); ``settings_from`` type-checks them."""

    schedule: str = "arccos"
    step_counts: str = "paper"  # 'valeoai': per-step shares of gamma at linspace(1, 0, T)
    steps: int = 8
    sweet_spot: int | None = None  # stop after this many steps (None: all T)
    cfg_weight: float = 1.0
    cfg_schedule: str = "constant"
    temperature: float = 4.5
    sample_tokens: bool = True  # False: argmax token (lab)
    token_temperature: float = 1.0  # the draw is from softmax(logits / token_temperature)
    top_k: int | None = None  # draw among the k likeliest codes only (None: all of them)
    gumbel_on: str = "logp"  # 'prob': Gumbel noise added to p (lab)
    precision: str = "32"  # 'bf16': transformer under bfloat16 autocast; 'auto': bf16 where it is native
    reencode: int = 2  # inpainting: rounds of (paste the known pixels, re-encode, decode) after decoding
    order: str = "confidence"  # 'halton': positions decided in the fixed Halton order
    confidence: str = "guided"  # 'conditional': rank by log p under the conditional model, not the guided one

    def validate(self) -> None:
        """Raise ValueError naming the first invalid setting."""
        get_schedule(self.schedule)
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.sweet_spot is not None and not 1 <= self.sweet_spot <= self.steps:
            raise ValueError(f"sweet_spot must be between 1 and steps={self.steps}, got {self.sweet_spot}")
        if self.gumbel_on not in GUMBEL_ON:
            raise ValueError(f"gumbel_on must be one of {GUMBEL_ON}, got {self.gumbel_on!r}")
        for key, allowed in (("step_counts", STEP_COUNTS), ("order", ORDERS), ("confidence", CONFIDENCES)):
            if getattr(self, key) not in allowed:
                raise ValueError(f"{key} must be one of {allowed}, got {getattr(self, key)!r}")
        if self.cfg_schedule not in CFG_SCHEDULES:
            raise ValueError(f"cfg_schedule must be one of {CFG_SCHEDULES}, got {self.cfg_schedule!r}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not self.token_temperature > 0:
            raise ValueError(f"token_temperature must be > 0 (1: the model's own), got {self.token_temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be >= 1 or null (all codes), got {self.top_k}")
        if self.reencode < 0:
            raise ValueError(f"reencode must be >= 0 (rounds; 0: off), got {self.reencode}")
        if str(self.precision) not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")


def settings_from(values: Mapping[str, Any]) -> DecodeSettings:
    """DecodeSettings from a config mapping: the dataclass is the schema (an OmegaConf structured config), so a
    value of the wrong type or an unknown key is refused before ``validate()`` checks the ranges.

    Raises ValueError with a one-line message that names the key.
    """
    try:
        typed = OmegaConf.merge(OmegaConf.structured(DecodeSettings), dict(values))
    except OmegaConfBaseException as e:
        key = e.full_key or e.key or "?"
        reason = str(e.msg).splitlines()[0] if e.msg else type(e).__name__
        raise ValueError(f"sampler setting {key}={values.get(str(key))!r}: {reason}") from None
    settings = OmegaConf.to_object(typed)
    assert isinstance(settings, DecodeSettings)
    settings.validate()
    return settings


@dataclass
class DecodeOutput:
    """Final tokens and, when asked for, each step's state."""

    tokens: torch.Tensor  # (B, N) code ids, nothing masked
    masks: list[torch.Tensor] = field(default_factory=list)  # per step (B, N) bool: still unknown after it
    predictions: list[torch.Tensor] = field(default_factory=list)  # per step (B, N): decided + predicted ids


def temperature_at(settings: DecodeSettings, k: int) -> float:
    """The Gumbel temperature of step k (0-based): tau_k = temperature * (1 - k / T)."""
    return settings.temperature * (1 - k / settings.steps)


def cfg_weight_at(settings: DecodeSettings, k: int) -> float:
    """The CFG weight of step k: constant, ramped linearly from w / T at the first step to w at the last
    ('linear'), or from 0 at the first step to w at the last ('linear0')."""
    t = settings.steps
    ramp = {"constant": 1.0, "linear": (k + 1) / t, "linear0": k / (t - 1) if t > 1 else 1.0}[settings.cfg_schedule]
    return settings.cfg_weight * ramp


def draw_tokens(logp: torch.Tensor, settings: DecodeSettings, generator: torch.Generator | None) -> torch.Tensor:
    """One code per row of ``logp`` (M, K) (log-probabilities): the argmax, or a draw from the distribution
    sharpened by ``token_temperature`` and cut to the ``top_k`` likeliest codes."""
    if not settings.sample_tokens:
        return logp.argmax(-1)
    if settings.token_temperature == 1 and settings.top_k is None:
        probs = logp.exp()  # the model's own distribution
    else:
        scaled = logp / settings.token_temperature
        if settings.top_k is not None and settings.top_k < scaled.shape[-1]:
            kth = scaled.topk(settings.top_k, dim=-1).values[:, -1:]  # (M, 1) the k-th largest
            scaled = scaled.masked_fill(scaled < kth, float("-inf"))
        probs = torch.softmax(scaled, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def gumbel_noise(
    shape: torch.Size, tau: float, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """tau * standard Gumbel noise of ``shape`` (the random draw happens even for tau = 0: same stream)."""
    u = torch.rand(shape, generator=generator, device=device).clamp_(1e-20, 1.0 - 1e-7)
    return tau * -torch.log(-torch.log(u))


@torch.no_grad()
def decode(
    model: MaskGITTransformer,
    tokens: torch.Tensor,
    unknown: torch.Tensor,
    class_ids: torch.Tensor | None,
    settings: DecodeSettings,
    generator: torch.Generator | None = None,
    return_history: bool = False,
) -> DecodeOutput:
    """Fill the ``unknown`` positions of ``tokens`` by iterative decoding.

    Args:
        tokens: (B, N) code ids; the values at unknown positions are ignored.
        unknown: (B, N) bool, True where the token is to be generated.
        class_ids: (B,) class ids, or None for the null class (unconditional).
        generator: a torch.Generator on the model's device, for reproducible samples.
    """
    settings.validate()
    schedule = get_schedule(settings.schedule)
    b, n = tokens.shape
    device = tokens.device
    mask_id = model.mask_token_id
    # guidance needs a real class to contrast with the null class
    guided = class_ids is not None and model.num_classes > 0 and settings.cfg_weight != 0
    if class_ids is None:
        class_ids = torch.full((b,), model.null_class_id, dtype=torch.long, device=device)

    unknown = unknown.bool()
    current = torch.where(unknown, torch.full_like(tokens, mask_id), tokens)  # (B, N)
    known = ~unknown
    counts = decided_counts(schedule, settings.steps, unknown.sum(1), settings.step_counts)  # (T, B)
    halton = halton_priority(n, device)[None].expand(b, n) if settings.order == "halton" else None  # (B, N)
    last = settings.sweet_spot or settings.steps
    out = DecodeOutput(tokens=current)
    bf16 = sampler_bf16(settings.precision, device.type)
    if bf16 and (slow := slow_bf16_warning("precision", settings.precision, device.type)):
        warnings.warn(slow, stacklevel=3)  # the caller of the no_grad-wrapped decode

    for k in range(last):
        still = current == mask_id  # (B, N)
        if not still.any():
            break
        w = cfg_weight_at(settings, k)
        # (B, N, K); w = 0 or an unconditional model needs only the conditional pass
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            if guided:
                logits, cond = model.guided_and_conditional(current, class_ids, w)
            else:
                logits = cond = model(current, class_ids)
        # only the still-unknown positions are sampled: (M,) rows of the (B, N) grid
        logp = torch.log_softmax(logits[still].float(), dim=-1)  # (M, K)
        drawn = draw_tokens(logp, settings, generator)  # (M,)
        prediction = current.masked_scatter(still, drawn)  # (B, N): decided ids, drawn ones where unknown
        if settings.confidence == "conditional" and cond is not logits:
            logp = torch.log_softmax(cond[still].float(), dim=-1)  # (M, K) ranks by the conditional model
        # (B, N) log p of the sampled token; +inf below for everything already known or decided
        picked = torch.zeros(b, n, device=device).masked_scatter(still, logp.gather(-1, drawn[:, None])[:, 0])
        score = picked if settings.gumbel_on == "logp" else picked.exp()
        noise = gumbel_noise(score.shape, temperature_at(settings, k), generator, device)  # drawn either way
        confidence = halton.float() if halton is not None else score + noise
        confidence = confidence.masked_fill(~still, float("inf"))  # known and decided are kept

        keep = known.sum(1) + counts[k]  # (B,) positions decided after this step, known included
        order = confidence.argsort(dim=1, descending=True)
        rank = torch.empty_like(order).scatter_(1, order, torch.arange(n, device=device).expand(b, n))
        decided = rank < keep[:, None]  # (B, N)
        current = torch.where(still & decided, prediction, current)
        if k == last - 1:  # sweet spot (or the last step): fill the rest with this step's prediction
            current = prediction
        if return_history:
            out.masks.append((current == mask_id).clone())
            out.predictions.append(prediction.clone())
    out.tokens = current
    return out
