"""A small ResNet classifier at native 64x64, the reference for class accuracy and Fréchet features.

Dimension legend: B batch, C channels, F feature width (the penultimate layer), K classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tinymaskgit.models.config import config_of


class BasicBlock(nn.Module):
    """ResNet basic block (He et al. 2016) with batch norm."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.skip(x))


@dataclass
class ClassifierConfig:
    """The reference classifier's settings."""

    num_classes: int
    widths: list[int] = field(default_factory=lambda: [32, 64, 128, 256])  # one stage per width
    blocks_per_stage: int = 2
    stem_stride: int = 1

    def __post_init__(self) -> None:
        self.widths = list(self.widths or [32, 64, 128, 256])


class ResNetClassifier(nn.Module):
    """(B, 3, 64, 64) in [-1, 1] -> (B, K) logits; ``features`` gives the (B, F) penultimate activations.

    ``ResNetClassifier(ClassifierConfig(...))`` or its fields as keywords."""

    def __init__(self, config: ClassifierConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        c = self.config = config_of(ClassifierConfig, config, kwargs)
        widths, num_classes, blocks_per_stage, stem_stride = c.widths, c.num_classes, c.blocks_per_stage, c.stem_stride
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], 3, stem_stride, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()
        )
        layers: list[nn.Module] = []
        cin = widths[0]
        for i, w in enumerate(widths):
            for j in range(blocks_per_stage):
                layers.append(BasicBlock(cin, w, stride=2 if (j == 0 and i > 0) else 1))
                cin = w
        self.stages = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, num_classes)
        self.feature_dim = cin

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features: globally pooled last stage, (B, F)."""
        return self.stages(self.stem(x)).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))
