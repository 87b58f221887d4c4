"""Analyses beside the paper: each a subpackage (describe, probe, auralise, quality, sweep...)."""
