"""Iterative decoding invariants."""

from __future__ import annotations

import pytest
import torch

from tinymaskgit.models.transformer import MaskGITTransformer
from tinymaskgit.sampling.decode import DecodeSettings, decode, settings_from
from tinymaskgit.sampling.schedules import SCHEDULES, decided_counts, get_schedule


@pytest.fixture(scope="module")
def net() -> MaskGITTransformer:
    torch.manual_seed(0)
    return MaskGITTransformer(
        codebook_size=16, num_tokens=36, num_classes=3, dim=32, depth=2, heads=4, mlp_dim=64
    ).eval()


def inpaint_problem(b: int = 4, n: int = 36, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, 16, (b, n), generator=g)
    unknown = torch.rand(b, n, generator=g) < torch.tensor([0.9, 0.5, 0.2, 0.05])[:b, None]
    return tokens, unknown


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
@pytest.mark.parametrize("steps", [1, 5, 8])
def test_invariants(net: MaskGITTransformer, schedule: str, steps: int) -> None:
    tokens, unknown = inpaint_problem()
    s = DecodeSettings(schedule=schedule, steps=steps, cfg_weight=1.5)
    out = decode(net, tokens, unknown, torch.tensor([0, 1, 2, 0]), s, return_history=True)
    assert out.tokens.shape == tokens.shape
    assert (out.tokens < net.codebook_size).all()  # nothing masked at the end
    assert torch.equal(out.tokens[~unknown], tokens[~unknown])  # known tokens never change
    counts = decided_counts(get_schedule(schedule), steps, unknown.sum(1))
    prev_mask = unknown
    for k, (mask, pred) in enumerate(zip(out.masks, out.predictions)):
        decided = (unknown & ~mask).sum(1)
        assert torch.equal(decided, counts[k])  # the schedule counts the initially unknown tokens
        assert not (mask & ~prev_mask).any()  # decided tokens are never re-masked
        assert torch.equal(pred[~mask], out.tokens[~mask])  # what is decided is final
        prev_mask = mask
    for k in range(1, len(out.predictions)):  # a decided token keeps its value
        was_decided = ~out.masks[k - 1]
        assert torch.equal(out.predictions[k][was_decided], out.predictions[k - 1][was_decided])


def test_every_step_decides_at_least_one(net: MaskGITTransformer) -> None:
    tokens = torch.zeros(1, 36, dtype=torch.long)
    unknown = torch.zeros(1, 36, dtype=torch.bool)
    unknown[0, :10] = True
    out = decode(net, tokens, unknown, None, DecodeSettings(schedule="cosine", steps=12), return_history=True)
    remaining = [int(m.sum()) for m in out.masks]
    assert remaining == list(range(9, -1, -1))  # 10 unknown, 12 steps: one per step, stop when done


def test_sweet_spot_stops_early_and_fills(net: MaskGITTransformer) -> None:
    tokens = torch.zeros(2, 36, dtype=torch.long)
    unknown = torch.ones(2, 36, dtype=torch.bool)
    out = decode(net, tokens, unknown, torch.tensor([0, 1]), DecodeSettings(steps=8, sweet_spot=3), return_history=True)
    assert len(out.masks) == 3
    assert (out.tokens < 16).all()
    assert torch.equal(out.tokens, out.predictions[-1])


def test_same_seed_same_samples(net: MaskGITTransformer) -> None:
    tokens = torch.zeros(3, 36, dtype=torch.long)
    unknown = torch.ones(3, 36, dtype=torch.bool)
    labels = torch.tensor([0, 1, 2])
    s = DecodeSettings(steps=6)
    a = decode(net, tokens, unknown, labels, s, generator=torch.Generator().manual_seed(7)).tokens
    b = decode(net, tokens, unknown, labels, s, generator=torch.Generator().manual_seed(7)).tokens
    c = decode(net, tokens, unknown, labels, s, generator=torch.Generator().manual_seed(8)).tokens
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize(
    "flags",
    [dict(sample_tokens=False), dict(gumbel_on="prob"), dict(cfg_schedule="linear"), dict(precision="bf16")],
)
def test_lab_conventions_keep_invariants(net: MaskGITTransformer, flags: dict) -> None:
    tokens, unknown = inpaint_problem()
    out = decode(net, tokens, unknown, torch.tensor([0, 1, 2, 0]), DecodeSettings(steps=6, **flags))
    assert torch.equal(out.tokens[~unknown], tokens[~unknown]) and (out.tokens < 16).all()


def test_argmax_without_noise_is_deterministic(net: MaskGITTransformer) -> None:
    tokens = torch.zeros(2, 36, dtype=torch.long)
    unknown = torch.ones(2, 36, dtype=torch.bool)
    s = DecodeSettings(steps=4, sample_tokens=False, temperature=0.0)
    a = decode(net, tokens, unknown, torch.tensor([0, 1]), s).tokens
    assert torch.equal(a, decode(net, tokens, unknown, torch.tensor([0, 1]), s).tokens)


@pytest.mark.parametrize(
    "bad,message",
    [
        (dict(steps=0), "steps"),
        (dict(sweet_spot=9), "sweet_spot"),
        (dict(schedule="x"), "schedule"),
        (dict(gumbel_on="p"), "gumbel_on"),
        (dict(cfg_schedule="cos"), "cfg_schedule"),
        (dict(precision="16"), "precision"),
        (dict(reencode=-1), "reencode"),
        (dict(token_temperature=0.0), "token_temperature"),
        (dict(top_k=0), "top_k"),
    ],
)
def test_bad_settings_are_named(net: MaskGITTransformer, bad: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode(
            net,
            torch.zeros(1, 36, dtype=torch.long),
            torch.ones(1, 36, dtype=torch.bool),
            None,
            DecodeSettings(**bad),
        )


def test_bf16_follows_float32_when_the_model_is_sure() -> None:
    """bf16 autocast changes the logits by rounding only: a peaked model decodes the same tokens."""
    torch.manual_seed(0)
    net = MaskGITTransformer(codebook_size=16, num_tokens=36, num_classes=3, dim=32, depth=2, heads=4, mlp_dim=64)
    net.eval()
    with torch.no_grad():
        net.head.weight.mul_(200)  # sharpen the predictions so that rounding cannot flip the argmax
    tokens = torch.zeros(2, 36, dtype=torch.long)
    unknown = torch.ones(2, 36, dtype=torch.bool)
    labels = torch.tensor([0, 1])
    base = dict(steps=4, sample_tokens=False, temperature=0.0)
    exact = decode(net, tokens, unknown, labels, DecodeSettings(**base)).tokens
    fast = decode(net, tokens, unknown, labels, DecodeSettings(precision="bf16", **base)).tokens
    assert (exact == fast).float().mean() > 0.9


# -- each flag changes what it should ----------------------------------------------------------------------
class Spy:
    """Wraps a transformer: records the CFG weight and output dtype of every forward the decoder makes."""

    def __init__(self, net: MaskGITTransformer) -> None:
        self.net, self.weights, self.dtypes, self.logits = net, [], [], []
        self.mask_token_id, self.num_classes, self.null_class_id = net.mask_token_id, net.num_classes, net.null_class_id

    def _record(self, out: torch.Tensor, w: float) -> torch.Tensor:
        self.weights.append(w)
        self.dtypes.append(out.dtype)
        self.logits.append(out.float().clone())
        return out

    def __call__(self, tokens, class_ids=None):
        return self._record(self.net(tokens, class_ids), 0.0)

    def guided_and_conditional(self, tokens, class_ids, cfg_weight):
        guided, cond = self.net.guided_and_conditional(tokens, class_ids, cfg_weight)
        return self._record(guided, cfg_weight), cond


def run(net, generator_seed: int = 0, **settings) -> tuple[torch.Tensor, Spy, list[float]]:
    import tinymaskgit.sampling.decode as decode_module

    spy, taus = Spy(net), []
    real = decode_module.gumbel_noise

    def noise(shape, tau, generator, device):
        taus.append(tau)
        return real(shape, tau, generator, device)

    tokens = torch.zeros(4, 36, dtype=torch.long)
    unknown = torch.ones(4, 36, dtype=torch.bool)
    g = torch.Generator().manual_seed(generator_seed)
    decode_module.gumbel_noise = noise
    try:
        out = decode(spy, tokens, unknown, torch.tensor([0, 1, 2, 0]), DecodeSettings(**settings), g, True)
    finally:
        decode_module.gumbel_noise = real
    return out, spy, taus


def test_temperature_is_annealed_at_every_step(net: MaskGITTransformer) -> None:
    _, _, taus = run(net, steps=6, temperature=3.0)
    assert taus == pytest.approx([3.0 * (1 - k / 6) for k in range(6)])
    a, _, _ = run(net, steps=6, temperature=3.0)
    b, _, _ = run(net, steps=6, temperature=0.0)
    assert not torch.equal(a.tokens, b.tokens)  # the noise decides which tokens are kept


@pytest.mark.parametrize(
    "schedule,expected",
    [("constant", [2.0] * 4), ("linear", [0.5, 1.0, 1.5, 2.0]), ("linear0", [0.0, 2 / 3, 4 / 3, 2.0])],
)
def test_cfg_weight_per_step(net: MaskGITTransformer, schedule: str, expected: list[float]) -> None:
    _, spy, _ = run(net, steps=4, cfg_weight=2.0, cfg_schedule=schedule)
    assert spy.weights == pytest.approx(expected)


class ClassBiased(MaskGITTransformer):
    """Fixed logits, the real guidance (``forward_with_cfg``): token 1 scores 1 with or without a class, token 2
    scores 0.9 with a real class only. The conditional model picks 1; at w = 3 the guided scores are 1 and 3.6."""

    def forward(self, tokens: torch.Tensor, class_ids: torch.Tensor | None = None) -> torch.Tensor:
        logits = torch.zeros(*tokens.shape, self.codebook_size)
        logits[..., 1] = 1.0
        if class_ids is not None:
            logits[..., 2] = 0.9 * (class_ids != self.null_class_id).float()[:, None]
        return logits


def test_cfg_weight_changes_the_samples() -> None:
    # a random net's class token moves its logits too little to flip a token reliably (on torch 2.11 w = 0 and
    # w = 3 drew the same tokens), so the guided choice is made unambiguous by fixed logits
    net = ClassBiased(codebook_size=16, num_tokens=36, num_classes=3, dim=8, depth=1, heads=2, mlp_dim=8).eval()
    a, _, _ = run(net, steps=4, cfg_weight=0.0, sample_tokens=False)
    b, _, _ = run(net, steps=4, cfg_weight=3.0, sample_tokens=False)
    assert (a.tokens == 1).all()
    assert (b.tokens == 2).all()


def test_precision_bf16_runs_the_transformer_in_bfloat16(net: MaskGITTransformer) -> None:
    _, exact, _ = run(net, steps=3, precision="32", cfg_weight=0.0)
    _, fast, _ = run(net, steps=3, precision="bf16", cfg_weight=0.0)
    assert set(exact.dtypes) == {torch.float32} and set(fast.dtypes) == {torch.bfloat16}


@pytest.mark.parametrize("native", [True, False])
def test_precision_auto_uses_bfloat16_only_where_it_is_native(net: MaskGITTransformer, monkeypatch, native) -> None:
    from tinymaskgit import precision

    monkeypatch.setattr(precision, "cpu_bf16_native", lambda: native)
    _, spy, _ = run(net, steps=3, precision="auto", cfg_weight=0.0)
    assert set(spy.dtypes) == ({torch.bfloat16} if native else {torch.float32})


def test_explicit_bf16_on_a_cpu_that_emulates_it_warns(net: MaskGITTransformer, monkeypatch) -> None:
    from tinymaskgit import precision

    monkeypatch.setattr(precision, "cpu_bf16_native", lambda: False)
    monkeypatch.setattr(precision.platform, "machine", lambda: "x86_64")
    with pytest.warns(UserWarning, match=r"precision=bf16 on a CPU without AVX512-BF16.*precision=auto"):
        run(net, steps=2, precision="bf16", cfg_weight=0.0)


def test_sample_tokens_false_takes_the_argmax(net: MaskGITTransformer) -> None:
    for sample_tokens in (False, True):
        out, spy, _ = run(net, steps=4, temperature=0.0, sample_tokens=sample_tokens)
        still = torch.ones(4, 36, dtype=torch.bool)
        agree = []
        for logits, pred, mask in zip(spy.logits, out.predictions, out.masks):
            agree.append(torch.equal(pred[still], logits.argmax(-1)[still]))
            still = mask
        assert all(agree) if not sample_tokens else not all(agree)


def test_top_k_draws_only_among_the_k_likeliest_codes(net: MaskGITTransformer) -> None:
    for top_k in (1, 3):
        out, spy, _ = run(net, steps=4, top_k=top_k)
        still = torch.ones(4, 36, dtype=torch.bool)
        for logits, pred, mask in zip(spy.logits, out.predictions, out.masks):
            ranks = (logits > logits.gather(-1, pred[..., None])).sum(-1)  # (B, N) codes scored above the draw
            assert (ranks[still] < top_k).all()  # every position drawn at this step
            still = mask
        if top_k == 1:  # the likeliest code: the argmax decoding's first step
            argmax, _, _ = run(net, steps=4, sample_tokens=False)
            assert torch.equal(out.predictions[0], argmax.predictions[0])
    wide, _, _ = run(net, steps=4, top_k=16)  # all 16 codes: the model's own distribution, the same draws
    assert torch.equal(wide.tokens, run(net, steps=4)[0].tokens)


def test_token_temperature_sharpens_the_draw() -> None:
    """A fixed distribution over 4 codes (0.4, 0.3, 0.2, 0.1): a low token temperature draws the likeliest code
    more often, a high one flattens the draw; 1 is the model's distribution."""
    from tinymaskgit.sampling.decode import draw_tokens

    logp = torch.tensor([0.4, 0.3, 0.2, 0.1]).log().expand(20_000, 4)
    share = {}
    for t in (0.25, 1.0, 4.0):
        drawn = draw_tokens(logp, DecodeSettings(token_temperature=t), torch.Generator().manual_seed(0))
        share[t] = (drawn == 0).float().mean().item()
    assert share[1.0] == pytest.approx(0.4, abs=0.02)
    expected_sharp = 0.4**4 / sum(p**4 for p in (0.4, 0.3, 0.2, 0.1))  # softmax(log p / 0.25) of code 0
    assert share[0.25] == pytest.approx(expected_sharp, abs=0.02) and share[4.0] < 0.32


def test_gumbel_on_prob_changes_the_confidences(net: MaskGITTransformer) -> None:
    a, _, _ = run(net, steps=6, gumbel_on="logp")
    b, _, _ = run(net, steps=6, gumbel_on="prob")
    assert not torch.equal(a.tokens, b.tokens)
    # the same draws, only the score they are added to differs: the first step's predictions are equal
    assert torch.equal(a.predictions[0], b.predictions[0])


def test_sweet_spot_runs_only_t_forwards(net: MaskGITTransformer) -> None:
    out, spy, _ = run(net, steps=8, sweet_spot=3)
    assert len(spy.weights) == 3 and len(out.masks) == 3 and (out.tokens < 16).all()
    full, spy_full, _ = run(net, steps=8)
    assert len(spy_full.weights) == 8 and not torch.equal(out.tokens, full.tokens)


def test_settings_schema_refuses_wrong_types_and_unknown_keys() -> None:
    s = settings_from({"steps": "12", "cfg_weight": 2, "sweet_spot": None, "precision": 32, "schedule": "cosine"})
    assert s == DecodeSettings(schedule="cosine", steps=12, cfg_weight=2.0, precision="32")
    with pytest.raises(ValueError, match=r"^sampler setting steps='many': .*"):
        settings_from({"steps": "many"})
    with pytest.raises(ValueError, match=r"^sampler setting temprature=1.0: .*"):
        settings_from({"temprature": 1.0})
    with pytest.raises(ValueError, match="sweet_spot must be between 1 and steps=4"):
        settings_from({"steps": 4, "sweet_spot": 6})


def test_the_sampler_config_holds_exactly_the_schema_keys() -> None:
    from dataclasses import fields
    from pathlib import Path

    import yaml

    conf = Path(__file__).resolve().parents[2] / "src" / "tinymaskgit" / "conf"
    schema = {f.name for f in fields(DecodeSettings)} - {"schedule"}  # schedule: the schedule group
    for option in ("default", "lab"):
        keys = set(yaml.safe_load((conf / "sampler" / f"{option}.yaml").read_text())) - {"seed", "defaults"}
        assert keys <= schema, f"sampler/{option}.yaml has keys the schema lacks: {keys - schema}"
    assert set(yaml.safe_load((conf / "sampler" / "default.yaml").read_text())) - {"seed"} == schema


# -- the valeoai step counts, the Halton order, the confidence source -----------------------------------------
class PositionBiased(MaskGITTransformer):
    """Token 1 always wins; its logit grows with the position under a real class (5 + i/N) and twice as fast
    for the null class (5 + 2i/N), so the guided scores (w > 1) fall with the position while the conditional
    ones rise: the two confidences rank the positions in opposite orders."""

    def forward(self, tokens: torch.Tensor, class_ids: torch.Tensor | None = None) -> torch.Tensor:
        b, n = tokens.shape
        pos = torch.arange(n, dtype=torch.float32) / n  # (N,)
        null = (class_ids == self.null_class_id).float()[:, None] if class_ids is not None else torch.ones(b, 1)
        logits = torch.zeros(b, n, self.codebook_size)
        logits[..., 1] = 5 + pos[None] * (1 + null)  # (B, N)
        return logits


@pytest.mark.parametrize("confidence,first_half", [("guided", True), ("conditional", False)])
def test_the_confidence_source_changes_the_order(confidence: str, first_half: bool) -> None:
    net = PositionBiased(codebook_size=16, num_tokens=36, num_classes=3, dim=8, depth=1, heads=2, mlp_dim=8).eval()
    s = DecodeSettings(steps=4, cfg_weight=3.0, temperature=0.0, sample_tokens=False, confidence=confidence)
    tokens, unknown = torch.zeros(1, 36, dtype=torch.long), torch.ones(1, 36, dtype=torch.bool)
    out = decode(net, tokens, unknown, torch.tensor([0]), s, return_history=True)
    decided = (~out.masks[0][0]).nonzero().flatten()  # positions decided at the first step
    assert len(decided) > 0
    assert (decided < 18).all() if first_half else (decided >= 18).all()


def test_valeoai_step_counts_start_with_one_token_and_sum_to_n() -> None:
    from tinymaskgit.sampling.schedules import arccos, decided_counts

    cum = decided_counts(arccos, 8, torch.tensor([256]), "valeoai")[:, 0]
    per_step = torch.diff(cum, prepend=torch.tensor([0])).tolist()
    assert per_step[:2] == [1, 18] and sum(per_step) == 256 and per_step[-1] == max(per_step)
    paper = torch.diff(decided_counts(arccos, 8, torch.tensor([256]))[:, 0], prepend=torch.tensor([0])).tolist()
    assert paper[0] == 21 and paper[-1] == 82  # the other rule of the same schedule name
    few = decided_counts(arccos, 8, torch.tensor([5]), "valeoai")[:, 0].tolist()
    assert few[-1] == 5 and all(b >= a for a, b in zip(few, few[1:]))  # inpainting a few tokens
    with pytest.raises(ValueError, match="step_counts"):
        decided_counts(arccos, 8, torch.tensor([5]), "lab")


def test_valeoai_step_counts_drive_the_decoder(net: MaskGITTransformer) -> None:
    s = DecodeSettings(steps=4, schedule="arccos", step_counts="valeoai")
    out = decode(net, torch.zeros(2, 36, dtype=torch.long), torch.ones(2, 36, dtype=torch.bool), None, s, None, True)
    still = [int(m[0].sum()) for m in out.masks]
    assert still[0] == 35 and still[-1] == 0  # one token at the first step, as valeoai's sampler


def test_halton_order_covers_the_grid_once() -> None:
    from tinymaskgit.sampling.halton import halton_order, halton_priority

    for side in (1, 4, 16):
        order = halton_order(side)
        assert sorted(order) == list(range(side * side))
    # the first cells spread over the grid: the first eight of a 16x16 grid reach all four quadrants
    quads = {(i // 16 // 8, i % 16 // 8) for i in halton_order(16)[:8]}
    assert len(quads) == 4
    with pytest.raises(ValueError, match="square"):
        halton_priority(10)


def test_halton_decoding_visits_unknown_positions_in_order_and_never_known(net: MaskGITTransformer) -> None:
    from tinymaskgit.sampling.halton import halton_order

    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 16, (1, 36), generator=g)
    unknown = torch.rand(1, 36, generator=g) < 0.5
    s = DecodeSettings(steps=5, order="halton")
    out = decode(net, tokens, unknown, None, s, torch.Generator().manual_seed(1), return_history=True)
    assert torch.equal(out.tokens[~unknown], tokens[~unknown])  # known tokens never change
    expected = [i for i in halton_order(6) if unknown[0, i]]
    seen: list[int] = []
    before = unknown[0].clone()
    for m in out.masks:
        newly = (before & ~m[0]).nonzero().flatten().tolist()
        seen += sorted(newly, key=expected.index)
        before = m[0].clone()
    assert seen == expected  # every unknown position exactly once, in Halton order
