"""Analyses beyond the paper: explanation quality, layer probes, controlled sweeps, auralisation."""
