"""Analyses beyond the paper: quality checks, probes, sweeps and auralisation (ANALYSIS.md)."""
