"""An interactive explorer of a run: look at each note's maps in Hz and listen to what they keep.

``scatterxai explore RUN_DIR`` (and the ``explore`` stage of ``scatterxai run``) writes a folder that any
browser opens from the file system — no server, no network, no external script or style:

* ``index.html``, ``static/explorer.js``, ``static/explorer.css`` — the page, shipped with the package;
* ``data/index.js`` — the run's overview: the notes table, the (λ1, λ2) grid with each path's λ1 and λ2
  (Hz), the class view (aggregated maps, paper eq. 13, and kurtosis per class) and the methods view (the
  comparison table of ``compare/`` and every verdict and score of ``quality/quality.json``);
* ``data/note-NNNN.js`` — one note: its local map per method, class probabilities, kurtosis and a
  log-frequency spectrogram, loaded when the note is opened;
* ``audio/`` — per note, the window the model saw and, per auralised method, the relevant part and its
  complement (:mod:`scatterxai.analysis.auralise`), as small Ogg Vorbis files.

Views: a sortable, filterable **notes** table; a **note** view (the map of the chosen method drawn cell by
cell, hovering a cell shows that path's λ1 and λ2 in Hz and its relevance; S1 column, f0 and the true rate
marked; spectrogram; probabilities; players); **classes**; **methods**.  Keyboard: ↑/↓ and Enter in the
table, n / p between notes, arrow keys on a map.  Colour maps are sequential and perceptually uniform
(viridis, magma: readable in grey); the sign of a relevance value is shown by a hatch, not by hue.

Which notes: a bounded, stated selection (:mod:`.select`): a few per class, misclassified ones first.
"""

from .build import EXPLORER_FILES, ExploreConfig, explore
from .select import select_notes

__all__ = ["explore", "ExploreConfig", "EXPLORER_FILES", "select_notes"]
