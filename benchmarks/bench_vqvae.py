"""Stage-1 speed: VQ-VAE training images/s per preset (forward, backward, Adam step).

python benchmarks/bench_vqvae.py [--presets tiny base lab] [--device cpu|cuda] [--out bench_out]
"""

from __future__ import annotations

import argparse

import torch
from common import preset, report, time_per_call

from tinymaskgit.lit.vqvae_module import psnr


def bench(name: str, device: torch.device, batch: int, iters: int) -> dict:
    torch.manual_seed(0)
    net = preset(name, "vqvae").to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    x = torch.rand(batch, 3, 64, 64, device=device) * 2 - 1
    amp = device.type == "cuda"

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            rec, q = net(x)
            loss = (rec.float() - x).pow(2).mean() + q.vq_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    sec = time_per_call(step, device, warmup=2, iters=iters)
    with torch.no_grad():
        rec, _ = net(x)
    return {
        "preset": name,
        "params_M": sum(p.numel() for p in net.parameters()) / 1e6,
        "batch": batch,
        "step_s": sec,
        "train_img_per_s": batch / sec,
        "tokens": net.num_tokens,
        "sanity_psnr": float(psnr(rec, x)),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["tiny", "base", "lab"])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=None, help="default: 32 on cpu (8 for lab), 128 on cuda")
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--out", default="bench_out")
    args = p.parse_args()
    device = torch.device(args.device)
    rows = []
    for name in args.presets:
        batch = args.batch or (128 if device.type == "cuda" else (8 if name == "lab" else 32))
        rows.append(bench(name, device, batch, args.iters))
    report("vqvae_train", rows, device, args.out)


if __name__ == "__main__":
    main()
