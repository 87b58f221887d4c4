"""The embedded synthetic corpus: source-filter instruments (:mod:`.instruments`), technique modulators
(:mod:`.techniques`), rendering (:mod:`.render`) and the SOL-PMT-profiled corpus writer (:mod:`.corpus`)."""

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

__all__ = ["DEFAULT_SCALE", "GROUND_TRUTH_COLUMNS", "SYNTH_VERSION", "NoteSpec", "make_note_spec",
           "render_note", "write_note", "plan_corpus", "corpus_columns", "synthesize_corpus", "profile_counts"]
