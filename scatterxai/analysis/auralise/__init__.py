"""Auralisation: listen to the part of a note that a relevance map keeps (``docs/analysis.md``,
"Auralisation")."""
