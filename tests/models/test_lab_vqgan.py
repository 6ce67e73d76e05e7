"""The MaskGIT lab's VQGAN.pt: a course-layout checkpoint (random weights, saved as the course saves it, a plain
state_dict beside its VQGAN.yml) loads, and its tokens and images equal those of an independent forward
written here from the state_dict alone; files of another layout are refused with one line naming the keys."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from tests.fakes import SMALL, course_files
from tinymaskgit.errors import CheckpointError
from tinymaskgit.inference import load_tokenizer
from tinymaskgit.models.lab_vqgan import LabVQGAN, LabVQGANConfig


# -- an independent forward: the lab's arithmetic from the state_dict alone --------------------------------------
def layers(sd: dict[str, torch.Tensor], prefix: str) -> list[tuple[str, str]]:
    """(kind, key prefix) of each layer of an nn.Sequential in ``sd``; an index without weights is a Swish."""
    idx = {int(k[len(prefix) :].split(".")[0]) for k in sd if k.startswith(prefix)}
    out = []
    for i in range(max(idx) + 1):
        p = f"{prefix}{i}."
        keys = {k[len(p) :] for k in sd if k.startswith(p)}
        kind = (
            "swish"
            if not keys
            else "res"
            if "block.0.gn.weight" in keys
            else "attn"
            if "q.weight" in keys
            else "resample"
            if "conv.weight" in keys
            else "norm"
            if "gn.weight" in keys
            else "conv"
        )
        out.append((kind, p))
    return out


def gn(sd, p, x):
    return F.group_norm(x, 32, sd[p + "weight"], sd[p + "bias"], eps=1e-6)


def conv(sd, p, x, stride=1, pad=None):
    w = sd[p + "weight"]
    return F.conv2d(x, w, sd[p + "bias"], stride, w.shape[-1] // 2 if pad is None else pad)


def residual(sd, p, x):
    h = x
    for a, b in (("block.0.gn.", "block.2."), ("block.3.gn.", "block.5.")):
        h = gn(sd, p + a, h)
        h = conv(sd, p + b, h * torch.sigmoid(h))
    skip = conv(sd, p + "channel_up.", x) if p + "channel_up.weight" in sd else x
    return skip + h


def attention(sd, p, x):
    b, c, hh, ww = x.shape
    h = gn(sd, p + "gn.gn.", x)
    q, k, v = (conv(sd, p + n + ".", h).flatten(2) for n in "qkv")  # (B, C, HW)
    w = torch.softmax(torch.einsum("bci,bcj->bij", q, k) / c**0.5, dim=-1)  # (B, query, key)
    out = torch.einsum("bij,bcj->bci", w, v).reshape(b, c, hh, ww)
    return x + conv(sd, p + "proj_out.", out)


def run(sd, prefix, x, down: bool):
    for kind, p in layers(sd, prefix):
        if kind == "swish":
            x = x * torch.sigmoid(x)
        elif kind == "res":
            x = residual(sd, p, x)
        elif kind == "attn":
            x = attention(sd, p, x)
        elif kind == "norm":
            x = gn(sd, p + "gn.", x)
        elif kind == "resample" and down:
            x = conv(sd, p + "conv.", F.pad(x, (0, 1, 0, 1)), stride=2, pad=0)
        elif kind == "resample":
            x = conv(sd, p + "conv.", F.interpolate(x, scale_factor=2, mode="nearest"))
        else:
            x = conv(sd, p, x)
    return x


def reference_tokens(sd, x):
    z = conv(sd, "quant_conv.", run(sd, "encoder.model.", x, down=True))  # (B, D, L, L)
    flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
    e = sd["codebook.embedding.weight"]
    d = (flat**2).sum(1, keepdim=True) + (e**2).sum(1) - 2 * flat @ e.t()
    return d.argmin(1).view(z.shape[0], z.shape[2], z.shape[3])


def reference_images(sd, ids):
    z = sd["codebook.embedding.weight"][ids].permute(0, 3, 1, 2)  # (B, D, L, L)
    return run(sd, "decoder.model.", conv(sd, "post_quant_conv.", z), down=False)


def test_course_checkpoint_tokens_and_images_match_an_independent_forward(tmp_path: Path) -> None:
    path = course_files(tmp_path / "course", **SMALL)
    tok = load_tokenizer(path)
    assert isinstance(tok, LabVQGAN) and not tok.training
    assert not any(p.requires_grad for p in tok.parameters())  # frozen: the lab forbids retraining it
    assert (tok.image_size, tok.latent_size, tok.codebook_size, tok.num_tokens) == (64, 16, 64, 256)
    sd = torch.load(path, weights_only=True)
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        ids = tok.tokenize(x)
        assert ids.shape == (3, 16, 16) and ids.dtype == torch.long
        assert torch.equal(ids, reference_tokens(sd, x))
        assert len(ids.unique()) > 1
        images = tok.decode_indices(ids)
        assert images.shape == (3, 3, 64, 64)
        assert torch.allclose(images, reference_images(sd, ids), atol=1e-4)


def test_sizes_come_from_the_yml_beside_it_or_the_lab_defaults(tmp_path: Path) -> None:
    path = course_files(tmp_path / "course", **SMALL)
    other = tmp_path / "elsewhere" / "weights.pt"
    other.parent.mkdir()
    other.write_bytes(path.read_bytes())
    with pytest.raises(CheckpointError, match="lab's default sizes.*mis-shaped"):
        load_tokenizer(other)  # no VQGAN.yml beside it: the lab's sizes, which these weights do not have
    assert isinstance(load_tokenizer(other, config=path.with_name("VQGAN.yml")), LabVQGAN)
    with pytest.raises(CheckpointError, match="tokenizer_config=.*does not exist"):
        load_tokenizer(other, config=tmp_path / "nope.yml")


def test_the_lab_defaults_are_the_lab_sizes() -> None:
    c = LabVQGANConfig()
    assert (c.enc_channels, c.dec_channels) == ([128, 128, 128, 256, 256, 512], [128, 128, 256, 256, 512])
    assert (c.latent_dim, c.latent_resolution, c.num_codebook_vectors) == (256, 16, 1024)
    with pytest.raises(ValueError, match="latent_resolution"):
        LabVQGANConfig(latent_resolution=8)


@pytest.mark.parametrize(
    "damage,message",
    [
        ("rename", r"missing codebook\.embedding\.weight \(1\); unexpected codebook\.codes\.weight \(1\)"),
        ("drop", r"missing quant_conv\.weight \(1\)"),
        ("codebook", r"mis-shaped codebook\.embedding\.weight \(32, 32\) \(expected \(64, 32\)\)"),
    ],
)
def test_a_file_of_another_layout_gets_one_line_naming_the_keys(tmp_path: Path, damage: str, message: str) -> None:
    path = course_files(tmp_path / "course", **SMALL)
    sd = torch.load(path, weights_only=True)
    if damage == "rename":
        sd["codebook.codes.weight"] = sd.pop("codebook.embedding.weight")
    elif damage == "drop":
        del sd["quant_conv.weight"]
    else:
        sd["codebook.embedding.weight"] = sd["codebook.embedding.weight"][:32]
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match=message) as e:
        load_tokenizer(path)
    assert "\n" not in str(e.value)


def test_stage_two_trains_on_the_course_tokenizer(generated_root: Path, tmp_path: Path) -> None:
    """experiment=cat_faces_lab with tokenizer_ckpt=VQGAN.pt: two steps; the checkpoint then samples."""
    from hydra import compose, initialize_config_dir

    from tests.conftest import CONF_DIR
    from tinymaskgit.inference import load_maskgit
    from tinymaskgit.sampling.decode import DecodeSettings
    from tinymaskgit.sampling.generate import generate
    from tinymaskgit.train import train

    path = course_files(tmp_path / "course", **SMALL)
    overrides = [
        "experiment=cat_faces_lab",
        "stage=maskgit",
        "trainer=cpu",
        f"tokenizer_ckpt={path}",
        f"data.root={generated_root / 'inpaint'}",
        "data.batch_size=4",
        "data.num_workers=0",
        "model.transformer.dim=32",
        "model.transformer.depth=1",
        "model.transformer.heads=2",
        "model.transformer.mlp_dim=32",
        "model.transformer.codebook_size=null",
        "trainer.max_steps=2",
        "trainer.max_epochs=1",
        "++trainer.limit_val_batches=1",
        "logger=csv",
        "callbacks=none",
        f"paths.root_dir={tmp_path}",
        f"paths.output_dir={tmp_path / 'run'}",
        f"stage.cache_dir={tmp_path / 'cache'}",
    ]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    train(cfg)
    ckpt = next((tmp_path / "run").rglob("*.ckpt"))
    m = load_maskgit(ckpt)
    assert isinstance(m.tokenizer, LabVQGAN) and m.net.codebook_size == 64
    res = generate(m, None, 2, DecodeSettings(steps=2), 2, 0)
    assert res.images.shape == (2, 3, 64, 64)


def test_train_a_lab_layout_tokenizer_and_export_it_as_the_course_does(
    generated_root: Path, tokenizer_ckpt: Path, tmp_path: Path, capsys
) -> None:
    """model=lab_vqgan stage=vqvae trains (two steps), export_vqgan writes VQGAN.pt + VQGAN.yml, and that file
    loads back as the course's would, with the trained network's tokens."""
    from hydra import compose, initialize_config_dir

    from tests.conftest import CONF_DIR
    from tinymaskgit.export_vqgan import export, main
    from tinymaskgit.inference import load_tokenizer as load
    from tinymaskgit.train import train

    small = {f"model.vqvae.{k}": v for k, v in SMALL.items() if k != "img_resolution"}
    overrides = [
        "stage=vqvae",
        "model=lab_vqgan",
        *(f"{k}={v}".replace(" ", "") for k, v in small.items()),
        f"data.root={generated_root / 'inpaint'}",
        "data=cat_faces",
        "data.batch_size=4",
        "data.num_workers=0",
        "trainer.max_steps=2",
        "trainer.max_epochs=1",
        "++trainer.limit_val_batches=1",
        "callbacks=none",
        "logger=csv",
        f"paths.root_dir={tmp_path}",
        f"paths.output_dir={tmp_path / 'run'}",
    ]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    train(cfg)
    ckpt = next((tmp_path / "run").rglob("*.ckpt"))
    trained = load(ckpt)
    assert isinstance(trained, LabVQGAN)
    pt = export(ckpt, tmp_path / "course")
    assert yaml.safe_load(pt.with_name("VQGAN.yml").read_text())["model_param"]["num_codebook_vectors"] == 64
    state = torch.load(pt, weights_only=True)  # a plain state_dict, as the course's
    assert all(isinstance(v, torch.Tensor) for v in state.values()) and "codebook.embedding.weight" in state
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    assert torch.equal(load(pt).tokenize(x), trained.tokenize(x))
    with pytest.raises(SystemExit):  # a VQ-VAE checkpoint is refused with one line
        main([str(tokenizer_ckpt), str(tmp_path / "again")])
    assert "not the lab's VQGAN layout" in capsys.readouterr().err


def test_the_lab_vq_loss_trains_the_encoder_and_the_codebook() -> None:
    net = LabVQGAN(LabVQGANConfig(**SMALL))
    rec, q = net(torch.rand(2, 3, 64, 64) * 2 - 1)
    (rec.pow(2).mean() + q.vq_loss).backward()
    assert net.codebook.embedding.weight.grad is not None and net.codebook.embedding.weight.grad.abs().sum() > 0
    assert net.encoder.model[0].weight.grad.abs().sum() > 0  # straight-through reaches the encoder


def test_seed_codes_sets_the_codes_to_latents_of_the_first_batch_once() -> None:
    """A fresh run's codebook (the lab's +-1/K initialisation) takes the first batch's latents; a trained
    codebook (a resumed run) is left alone; without the option the codebook stays the lab's."""
    torch.manual_seed(0)
    x = torch.rand(4, 3, 64, 64) * 2 - 1
    plain = LabVQGAN(LabVQGANConfig(**SMALL)).train()
    before = plain.codebook.embedding.weight.clone()
    plain(x)
    assert torch.equal(plain.codebook.embedding.weight, before)

    net = LabVQGAN(LabVQGANConfig(**SMALL), seed_codes=True).train()
    net.load_state_dict(plain.state_dict())
    net(x)
    codes = net.codebook.embedding.weight.detach()
    z = net.quant_conv(net.encoder(x)).detach().permute(0, 2, 3, 1).reshape(-1, codes.shape[1])
    assert torch.cdist(codes, z).min(dim=1).values.max() < 1e-2 * z.std()  # every code sits on a latent
    seeded = codes.clone()
    net(x)  # no longer the initialisation: never seeded again
    assert torch.equal(net.codebook.embedding.weight, seeded)
    assert set(net.state_dict()) == set(plain.state_dict())  # VQGAN.pt keeps the course's keys


def test_restart_dead_reseeds_only_codes_unused_for_dead_after_steps() -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    net = LabVQGAN(LabVQGANConfig(**SMALL), restart_dead=True, dead_after=2).train()
    before = net.codebook.embedding.weight.clone()
    used = net.eval().tokenize(x).unique()
    net.train()(x)
    assert torch.equal(net.codebook.embedding.weight, before)  # one step unused is not yet dead
    net(x)
    changed = (net.codebook.embedding.weight != before).any(dim=1)
    assert not changed[used].any() and changed.sum() == net.codebook_size - used.numel()
    net.eval()(x)  # evaluation never touches the codebook
    with pytest.raises(ValueError, match="dead_after"):
        LabVQGAN(LabVQGANConfig(**SMALL), dead_after=0)
