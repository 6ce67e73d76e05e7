"""Mask schedules and iterative decoding: functions of a model and settings, not of the trainer."""
