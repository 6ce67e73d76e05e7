"""tinymaskgit: a VQ-VAE tokenizer and a MaskGIT transformer for 64x64 images."""

__version__ = "0.1.0"
