"""Analyses beyond the paper: what the layers represent, whether explanations are right, controlled sweeps."""
