"""The embedded synthetic corpus: source-filter instruments (:mod:`.instruments`), technique modulators
(:mod:`.techniques`), rendering (:mod:`.render`), performance and recording conditions (:mod:`.realism`),
the SOL-PMT-profiled corpus writer (:mod:`.corpus`) and controlled variations of one note (:mod:`.sweep`)."""

from .corpus import (
                     DEFAULT_SCALE,
                     GROUND_TRUTH_COLUMNS,
                     SYNTH_VERSION,
                     NoteSpec,
                     corpus_columns,
                     make_note_spec,
                     plan_corpus,
                     profile_counts,
                     render_note,
                     synthesize_corpus,
                     write_note,
)
from .realism import REALISM_FACTORS, Realism, parse_realism
from .sweep import FACTORS, Sweep, base_note, default_values, plan_sweep, vary, write_sweep

__all__ = ["REALISM_FACTORS", "Realism", "parse_realism",
           "DEFAULT_SCALE", "GROUND_TRUTH_COLUMNS", "SYNTH_VERSION", "NoteSpec", "make_note_spec",
           "render_note", "write_note", "plan_corpus", "corpus_columns", "synthesize_corpus", "profile_counts",
           "FACTORS", "Sweep", "base_note", "vary", "default_values", "plan_sweep", "write_sweep"]
