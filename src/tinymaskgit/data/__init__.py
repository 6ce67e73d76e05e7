"""LightningDataModules: tiny-imagenet-10, cat-faces, and the generated default dataset."""
