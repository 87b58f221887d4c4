"""Auralisation: listen to the part of a note that a relevance map keeps (ANALYSIS.md section 5)."""
