"""LightningModules: training logic only; they take built nets."""
