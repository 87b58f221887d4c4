#!/usr/bin/env python
"""Screenshot of a run's explorer (the README's figures/explorer.png) in headless Chromium.

    python experiments/explorer_screenshot.py --run results/demo [--out figures/explorer.png]

Opens ``RUN/explorer/index.html`` from the file system (``make demo`` writes it; ``scatterxai explore RUN``
too), shows the note view of the first misclassified note (else the first note) with LRP-[ε,z+], hovers the
strongest cell of its map so that the tooltip shows its λ1 and λ2 in Hz, and saves the page as a
256-colour PNG.  Needs Playwright for Python (``pip install playwright``, in the test extra) and a Chromium
(Debian: ``apt-get install chromium``, or ``--chromium PATH``); says so and exits 0 without them.
"""

import argparse
import os
import shutil

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]


def _chromium(path):
    for c in (path, os.environ.get("SCATTERXAI_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
              shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


def _note_to_show(index_js):
    """Id of the first misclassified note of the explorer (else 0)."""
    import json
    with open(index_js, encoding="utf-8") as fh:
        text = fh.read().strip()
    header = json.loads(text[text.index("(") + 1:-2])
    return next((n["id"] for n in header["notes"] if n.get("correct") is False), 0), header


def screenshot(index: str, out: str, chromium: str, *, method: str = "epsilon_plus", width: int = 1320) -> str:
    from PIL import Image
    from playwright.sync_api import sync_playwright

    note, header = _note_to_show(os.path.join(os.path.dirname(index), "data", "index.js"))
    if method not in [m["name"] for m in header["methods"]]:
        method = header["default_method"]
    url = f"file://{os.path.abspath(index)}#note/{note}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=ARGS)
        page = browser.new_page(viewport={"width": width, "height": 1000})
        page.goto(url)
        page.wait_for_function(f"SXAI.debug().loaded.indexOf({note}) >= 0")
        page.select_option("#method", method)
        page.focus("#map")                      # the cursor starts on the strongest cell
        row = int(page.get_attribute("#map-readout", "data-row"))
        col = int(page.get_attribute("#map-readout", "data-col"))
        centre = page.evaluate(f"SXAI.debug().cellCentre({row}, {col})")
        box = page.locator("#map").bounding_box()
        page.evaluate("document.activeElement.blur()")
        page.mouse.move(box["x"] + centre["x"], box["y"] + centre["y"])
        page.wait_for_timeout(300)
        tmp = out + ".tmp.png"
        page.screenshot(path=tmp, full_page=True)
        browser.close()
    image = Image.open(tmp).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(out, optimize=True)
    os.remove(tmp)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default="results/demo", help="run directory holding explorer/index.html")
    p.add_argument("--out", default="figures/explorer.png", help="PNG to write")
    p.add_argument("--method", default="epsilon_plus", help="method shown")
    p.add_argument("--chromium", default=None, help="Chromium or Chrome executable")
    args = p.parse_args(argv)
    index = os.path.join(args.run, "explorer", "index.html")
    if not os.path.isfile(index):
        print(f"{index} not found: run make demo (or scatterxai explore {args.run}) first")
        return 0
    chromium = _chromium(args.chromium)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        print("Playwright for Python is not installed (pip install playwright); no screenshot taken")
        return 0
    if chromium is None:
        print("no Chromium found (apt-get install chromium, or --chromium PATH); no screenshot taken")
        return 0
    print(screenshot(index, args.out, chromium, method=args.method))
    return 0


if __name__ == "__main__":
    from scatterxai.cli import run_script
    run_script(main)
