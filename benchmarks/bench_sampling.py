"""Sampling speed: batched iterative decoding vs a reference loop written like the MaskGIT lab's skeleton.

The reference decodes one image at a time, runs the conditional and unconditional passes separately, and
decodes the tokens to pixels after every step (to show them); ours batches images and both CFG halves
and decodes pixels once. Both use the same networks, T steps and CFG weight, in the same run. The reference
always runs in float32 (as the skeleton does); ours is timed at each ``--precisions`` value.
``forwards_only_img_per_s`` times the T batched transformer forwards alone: no sampler that runs this
network T times with CFG at this batch size can beat it; ``ceiling_speedup`` is that bound over the reference.

    python benchmarks/bench_sampling.py [--presets tiny lab] [--steps 8] [--n 64] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from common import preset, report, sync, time_per_call

from tinymaskgit.inference import MaskGIT
from tinymaskgit.sampling.decode import DecodeSettings
from tinymaskgit.sampling.generate import generate
from tinymaskgit.sampling.schedules import get_schedule


@torch.no_grad()
def reference_sample_one(m: MaskGIT, class_id: int, steps: int, w: float, temperature: float) -> torch.Tensor:
    """One image, as the lab's skeleton writes it: separate CFG passes, pixels decoded every step."""
    net, tok = m.net, m.tokenizer
    device = next(net.parameters()).device
    n = net.num_tokens
    side = tok.latent_size
    tokens = torch.full((1, n), net.mask_token_id, device=device)
    gamma = get_schedule("arccos")
    image = None
    for k in range(steps):
        cond = net(tokens, torch.tensor([class_id], device=device))
        uncond = net(tokens, torch.tensor([net.null_class_id], device=device))
        logits = (1 + w) * cond - w * uncond
        probs = logits.softmax(-1)[0]  # (N, K)
        sampled = torch.multinomial(probs, 1)[:, 0]
        conf = torch.log(probs.gather(-1, sampled[:, None])[:, 0])
        gumbel = -torch.log(-torch.log(torch.rand(n, device=device).clamp(1e-20, 1 - 1e-7)))
        conf = conf + temperature * (1 - k / steps) * gumbel
        masked = tokens[0] == net.mask_token_id
        conf[~masked] = float("inf")
        n_keep = n - math.floor(gamma(torch.tensor((k + 1) / steps)).item() * n)
        keep = conf.argsort(descending=True)[:n_keep]
        new = tokens[0].clone()
        new[keep] = torch.where(masked[keep], sampled[keep], tokens[0][keep])
        tokens = new[None]
        filled = torch.where(tokens[0] == net.mask_token_id, sampled, tokens[0])
        image = tok.decode_indices(filled.view(1, side, side))  # shown at every step
    assert image is not None
    return image


def bench(name: str, device: torch.device, steps: int, n: int, n_ref: int, precisions: list[str]) -> list[dict]:
    torch.manual_seed(0)
    tok = preset(name, "vqvae").to(device).eval()
    net = (
        preset(name, "transformer", codebook_size=tok.codebook_size, num_tokens=tok.num_tokens, num_classes=10)
        .to(device)
        .eval()
    )
    m = MaskGIT(net, tok, [str(i) for i in range(10)], {})
    labels = torch.arange(n) % 10
    tokens = torch.randint(0, tok.codebook_size, (n, tok.num_tokens), device=device)  # for the ceiling
    ids = labels.to(device)
    ours, ceiling = {}, {}
    for precision in precisions:
        settings = DecodeSettings(schedule="arccos", steps=steps, cfg_weight=1.0, precision=precision)
        generate(m, labels[:4], 4, settings, batch_size=4)  # warm-up
        sync(device)
        t = time.perf_counter()
        generate(m, labels, n, settings, batch_size=n)
        sync(device)
        ours[precision] = n / (time.perf_counter() - t)
        # the ceiling for any sampler that runs this network T times with CFG: the forwards alone
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            sec = time_per_call(lambda: net.forward_with_cfg(tokens, ids, 1.0), device, warmup=1, iters=3)
        ceiling[precision] = n / (steps * sec)
    reference_sample_one(m, 0, steps, 1.0, 4.5)  # warm-up
    sync(device)
    t = time.perf_counter()
    for i in range(n_ref):
        reference_sample_one(m, i % 10, steps, 1.0, 4.5)
    sync(device)
    ref = n_ref / (time.perf_counter() - t)
    return [
        {
            "preset": name,
            "precision": precision,
            "steps": steps,
            "batch": n,
            "ours_img_per_s": speed,
            "reference_img_per_s": ref,
            "speedup": speed / ref,
            "forwards_only_img_per_s": ceiling[precision],
            "ceiling_speedup": ceiling[precision] / ref,
            "tokens": tok.num_tokens,
        }
        for precision, speed in ours.items()
    ]


def bench_attention(name: str, device: torch.device, batch: int, iters: int = 5) -> list[dict]:
    """Forward time of the transformer with the written-out attention vs F.scaled_dot_product_attention."""
    torch.manual_seed(0)
    tok_cfg = preset(name, "vqvae")
    net = (
        preset(name, "transformer", codebook_size=tok_cfg.codebook_size, num_tokens=tok_cfg.num_tokens, num_classes=10)
        .to(device)
        .eval()
    )
    tokens = torch.randint(0, tok_cfg.codebook_size, (batch, tok_cfg.num_tokens), device=device)
    labels = torch.arange(batch, device=device) % 10
    rows = []
    for impl in ("math", "sdpa"):
        net.set_attn_impl(impl)
        with torch.no_grad():
            sec = time_per_call(lambda: net(tokens, labels), device, warmup=2, iters=iters)
        rows.append(
            {
                "preset": name,
                "attn_impl": impl,
                "batch": batch,
                "forward_ms": sec * 1000,
                "tokens_per_s": batch * tok_cfg.num_tokens / sec,
            }
        )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=None, help="default: tiny on cpu, tiny and lab on cuda")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--n", type=int, default=64, help="images generated by the batched sampler")
    p.add_argument("--n-ref", type=int, default=16, help="images generated by the reference loop")
    p.add_argument("--precisions", nargs="+", default=["32", "bf16"], help="sampler precisions to time")
    p.add_argument("--out", default="bench_out")
    args = p.parse_args()
    device = torch.device(args.device)
    presets = args.presets or (["tiny", "lab"] if device.type == "cuda" else ["tiny"])
    rows = [r for name in presets for r in bench(name, device, args.steps, args.n, args.n_ref, args.precisions)]
    report("sampling", rows, device, args.out)
    print()
    attn = [r for name in presets for r in bench_attention(name, device, 128 if device.type == "cuda" else 64)]
    report("attention", attn, device, args.out)


if __name__ == "__main__":
    main()
