"""What stage 2 takes as its tokenizer: this package's VQ-VAE, or the MaskGIT lab's VQGAN in its own layout.

Both give ``tokenize`` ((B, 3, S, S) in [-1, 1] -> (B, L, L) ids), ``decode_indices``, ``forward`` ->
(reconstruction, quantizer output), and ``image_size``, ``latent_size``, ``codebook_size``, ``num_tokens``,
``config`` (a dataclass a checkpoint stores).
"""

from __future__ import annotations

from tinymaskgit.models.lab_vqgan import LabVQGAN
from tinymaskgit.models.vqvae import VQVAE

Tokenizer = VQVAE | LabVQGAN
