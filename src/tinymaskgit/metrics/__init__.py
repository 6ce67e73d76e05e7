"""Evaluation metrics: Fréchet distance and KID over Inception or reference-classifier features."""
