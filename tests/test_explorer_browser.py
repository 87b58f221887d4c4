"""The explorer in a real headless browser (Chromium driven by Playwright), opened from file://.

Needs ``pip install playwright`` (the test extra) and a Chromium: Debian's package (``apt-get install
chromium``, which ``.ci/run`` installs), or the executable named by ``SCATTERXAI_CHROMIUM``.  Playwright's own
browser download is not used.  Without them the module is skipped, saying what is missing.
"""

import os
import shutil

import numpy as np
import pytest

from scatterxai.explore import ExploreConfig, explore
from scatterxai.io.relevance import RelevanceFile

from ._explore_run import METHODS, page_data, shared_run

playwright = pytest.importorskip("playwright.sync_api", reason="the browser test needs Playwright for Python "
                                                               "(pip install playwright; no browser download needed)")


def _chromium():
    candidates = [os.environ.get("SCATTERXAI_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                  shutil.which("chromium-browser"), shutil.which("google-chrome")]
    return next((c for c in candidates if c and os.path.isfile(c) and os.access(c, os.X_OK)), None)


CHROMIUM = _chromium()
if CHROMIUM is None:
    pytest.skip("no Chromium to drive: apt-get install chromium (Debian/Ubuntu), or set SCATTERXAI_CHROMIUM to a "
                "Chromium or Chrome executable", allow_module_level=True)

#: headless, and nothing that would reach the network by itself
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]


@pytest.fixture(scope="module")
def explorer(tmp_path_factory):
    run = shared_run(tmp_path_factory)
    out = tmp_path_factory.mktemp("browser") / "explorer"
    explore(run["root"], out, ExploreConfig(notes=2))
    header, notes = page_data(out)
    return {"run": run, "out": out, "url": (out / "index.html").as_uri(), "header": header, "notes": notes}


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A page that records console messages, uncaught errors and every request."""
    p = browser.new_page(viewport={"width": 1320, "height": 1000})
    p.log = {"console": [], "errors": [], "requests": []}
    p.on("console", lambda m: p.log["console"].append((m.type, m.text)))
    p.on("pageerror", lambda e: p.log["errors"].append(str(e)))
    p.on("request", lambda r: p.log["requests"].append(r.url))
    yield p
    p.close()


def _clean(page):
    assert page.log["errors"] == []
    assert [m for m in page.log["console"] if m[0] in ("error", "warning")] == []
    assert [u for u in page.log["requests"] if not u.startswith("file://")] == []


def _open_note(page, explorer, note_id):
    page.goto(f"{explorer['url']}#note/{note_id}")
    page.wait_for_function(f"SXAI.debug().loaded.indexOf({note_id}) >= 0")
    page.wait_for_function("document.getElementById('map-caption').textContent.indexOf('relevance of') >= 0")


def _map_image(page):
    return page.evaluate("document.getElementById('map').toDataURL()")


def test_loads_from_file_without_errors_or_network(page, explorer):
    page.goto(explorer["url"])
    page.wait_for_selector("#notes-table tbody tr")
    assert page.title().startswith("scatterxai explorer")
    for view in ("note/0", "classes", "methods", "notes"):
        page.goto(f"{explorer['url']}#{view}")
        page.wait_for_timeout(150)
    _clean(page)
    assert any(u.endswith("/data/index.js") for u in page.log["requests"])
    assert any(u.endswith("/data/note-0000.js") for u in page.log["requests"])


def test_notes_table_rows_sorting_and_filters(page, explorer):
    notes = explorer["header"]["notes"]
    page.goto(explorer["url"])
    page.wait_for_selector("#notes-table tbody tr")
    files = page.locator("#notes-table tbody tr td:first-child").all_inner_texts()
    assert files == [n["file"] for n in notes] and len(files) == 10
    headers = page.locator("#notes-table thead th").all_inner_texts()
    assert headers == ["file", "class", "prediction", "confidence", "pitch", "modulation rate", "correct?",
                       "instrument"]
    page.click("#notes-table thead button[data-key=confidence]")
    ids = [int(i) for i in page.eval_on_selector_all("#notes-table tbody tr", "rs => rs.map(r => r.dataset.id)")]
    assert [notes[i]["confidence"] for i in ids] == sorted(n["confidence"] for n in notes)
    assert page.get_attribute("#notes-table thead th[data-key=confidence]", "aria-sort") == "ascending"
    page.check("#filter-wrong")
    wrong = [n["file"] for n in notes if n["correct"] is False]
    assert sorted(page.locator("#notes-table tbody tr td:first-child").all_inner_texts()) == sorted(wrong)
    page.uncheck("#filter-wrong")
    page.select_option("#filter-class", "3")
    shown = page.locator("#notes-table tbody tr td:first-child").all_inner_texts()
    assert sorted(shown) == sorted(n["file"] for n in notes if n["label"] == 3) and len(shown) == 2
    page.fill("#filter-text", notes[6]["pitch"])
    assert page.locator("#notes-table tbody tr").count() == 1
    _clean(page)


def test_choosing_another_method_changes_the_map(page, explorer):
    _open_note(page, explorer, 0)
    assert page.input_value("#method") == "epsilon_plus"
    before, caption = _map_image(page), page.inner_text("#map-caption")
    page.select_option("#method", "gradient_x_input")
    page.wait_for_function("document.getElementById('map-caption').textContent.indexOf('gradient') >= 0")
    assert _map_image(page) != before and page.inner_text("#map-caption") != caption
    page.select_option("#method", "epsilon_plus")
    assert _map_image(page) == before                                    # the same values draw the same map
    page.select_option("#method", "gradient_x_input")                   # signed: it has negative cells
    signed = _map_image(page)
    page.check("input[name=mode][value=positive]")
    assert _map_image(page) != signed
    _clean(page)


def test_hovering_a_cell_shows_its_frequencies_in_hz(page, explorer):
    note = explorer["header"]["notes"][1]
    _open_note(page, explorer, note["id"])
    box = page.locator("#map").bounding_box()
    with RelevanceFile(explorer["run"]["relevance"]) as rf:
        lam1, lam2, order = rf.paths["lambda1_hz"], rf.paths["lambda2_hz"], rf.paths["order"]
        local = rf.local("epsilon_plus")[note["row"]]
    s1, s2 = np.flatnonzero(order == 1), np.flatnonzero(order == 2)
    for p in (s1[len(s1) // 2], s2[0], s2[len(s2) // 2], s2[-1]):
        centre = page.evaluate(f"(() => {{ const d = SXAI.debug(), c = d.pathCell({p}); "
                               f"return d.cellCentre(c.row, c.col); }})()")
        page.mouse.move(box["x"] + centre["x"], box["y"] + centre["y"])
        readout = page.locator("#map-readout")
        assert int(readout.get_attribute("data-path")) == p
        assert float(readout.get_attribute("data-lambda1-hz")) == lam1[p]
        text = readout.inner_text()
        assert f"λ1 = {_hz(lam1[p])}" in text
        if order[p] == 1:
            assert readout.get_attribute("data-lambda2-hz") == "" and "S1" in text
        else:
            assert float(readout.get_attribute("data-lambda2-hz")) == lam2[p] and f"λ2 = {_hz(lam2[p])}" in text
        assert float(readout.get_attribute("data-value")) == float(local[p])
        assert page.is_visible("#tooltip") and page.inner_text("#tooltip") == text
    _clean(page)


def _hz(v: float) -> str:
    """The page's Hz format (explorer.js fmtHz)."""
    return f"{v:.0f} Hz" if v >= 100 else f"{v:.1f} Hz" if v >= 10 else f"{v:.2f} Hz"


def test_every_audio_element_loads(page, explorer):
    wait = ("Promise.all(Array.from(document.querySelectorAll('#players audio')).map(a => a.readyState >= 1 ? "
            "a.duration : new Promise((ok, no) => { a.addEventListener('loadedmetadata', () => ok(a.duration)); "
            "a.addEventListener('error', () => no(new Error('audio failed: ' + a.src))); })))")
    window = explorer["header"]["scattering"]["window_s"]
    for note in explorer["header"]["notes"][:3]:
        _open_note(page, explorer, note["id"])
        for method in METHODS:
            page.select_option("#method", method)
            durations = page.evaluate(wait)
            assert len(durations) == 3 and all(d == pytest.approx(window, abs=0.01) for d in durations), durations
            srcs = page.eval_on_selector_all("#players audio", "as => as.map(a => a.getAttribute('src'))")
            audio = explorer["notes"][note["id"]]["audio"]
            assert srcs == [f"audio/{audio['note']}", f"audio/{audio['methods'][method]['relevant']}",
                            f"audio/{audio['methods'][method]['complement']}"]
    _clean(page)


def test_keyboard_navigation(page, explorer):
    notes = explorer["header"]["notes"]
    page.goto(explorer["url"])
    page.wait_for_selector("#notes-table tbody tr")
    page.focus("#notes-table tbody tr:first-child")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_function("location.hash === '#note/2'")
    page.wait_for_function("SXAI.debug().loaded.indexOf(2) >= 0")
    assert page.inner_text("#note-title") == notes[2]["file"]
    page.keyboard.press("n")
    page.wait_for_function("location.hash === '#note/3'")
    page.keyboard.press("p")
    page.wait_for_function("location.hash === '#note/2'")
    page.keyboard.press("p")
    page.wait_for_function("location.hash === '#note/1'", timeout=5000)
    page.wait_for_function("SXAI.debug().loaded.indexOf(1) >= 0")
    # two keys in one task, before the first hash change has reached the page: each starts from the note the
    # address names (1 → 2 → 3), not from the page's state, which the hashchange event updates later
    page.evaluate("() => ['n', 'n'].forEach(k => document.dispatchEvent(new KeyboardEvent('keydown', {key: k})))")
    page.wait_for_function("location.hash === '#note/3'", timeout=5000)
    page.keyboard.press("p")
    page.keyboard.press("p")
    page.wait_for_function("location.hash === '#note/1'", timeout=5000)
    page.wait_for_function("SXAI.debug().loaded.indexOf(1) >= 0")
    page.focus("#map")                                                  # the cursor starts on the peak cell
    first = page.get_attribute("#map-readout", "data-path")
    page.keyboard.press("ArrowLeft")
    assert page.get_attribute("#map-readout", "data-path") != first
    assert page.locator("#map-alt").inner_text().startswith("Text description:")
    _clean(page)


def test_class_and_methods_views(page, explorer, tmp_path):
    page.goto(f"{explorer['url']}#classes")
    page.wait_for_selector("#class-maps canvas")
    assert page.locator("#class-maps canvas").count() == 5
    before = page.evaluate("document.querySelector('#class-maps canvas').toDataURL()")
    page.select_option("#class-method", "gradient_x_input")
    assert page.evaluate("document.querySelector('#class-maps canvas').toDataURL()") != before
    assert page.locator("#kurtosis-table tbody tr").count() == len(METHODS)
    page.goto(f"{explorer['url']}#methods")
    page.wait_for_selector("#methods-quality table")
    assert page.locator("#methods-quality .fail").count() == 3             # the fixture's three failed checks
    assert page.locator("#methods-compare table").first.locator("tbody tr").count() == len(METHODS)
    page.screenshot(path=str(tmp_path / "methods.png"), full_page=True)
    assert (tmp_path / "methods.png").stat().st_size > 0
    _clean(page)


def test_a_run_without_audio_or_analyses(page, explorer, tmp_path):
    root = tmp_path / "run"
    shutil.copytree(explorer["run"]["root"], root, ignore=shutil.ignore_patterns("audio", "compare", "quality"))
    explore(root, root / "explorer", ExploreConfig(notes=1, audio=False))
    url = (root / "explorer" / "index.html").as_uri()
    page.goto(f"{url}#note/0")
    page.wait_for_function("SXAI.debug().loaded.indexOf(0) >= 0")
    assert "without audio" in page.inner_text("#players") and page.locator("#players audio").count() == 0
    assert "No spectrogram" in page.inner_text("#spec-alt")
    page.goto(f"{url}#methods")
    page.wait_for_selector("#methods-quality h3")
    assert "has no comparison" in page.inner_text("#methods-compare")
    assert "has no quality checks" in page.inner_text("#methods-quality")
    _clean(page)
