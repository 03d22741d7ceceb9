"""Open pages of the built documentation site in headless Chromium and check that their figures render.

    python -m sphinx -W --keep-going -n -b html docs docs/_build/html    # build the site first
    python scripts/check_docs.py                                        # index, a paper page, a tutorial
    python scripts/check_docs.py --pages index.html cli.html --out /tmp/shots

The site is served on a free loopback port. For each page, Chromium (Debian's ``chromium``)
loads a small checking page that opens the page in a same-origin frame, waits for every ``<img>``
to finish loading and reports its ``naturalWidth``/``naturalHeight``; a page passes when it
shows at least ``--min-images`` images and every one decoded to a non-empty bitmap. A screenshot
of each page is written to ``--out`` (default ``docs/_build/check/``) to look at. Exit status 1
when a page fails, 2 when the site or Chromium is missing.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("index.html", "papers/vampprior.html", "_generated/tutorials/03_vampprior.html")
CHECK_PATH = "/__check__.html"
CHECK_PAGE = """<!doctype html><html><body><pre id="result">pending</pre>
<iframe id="page" src="/{page}" style="width:1280px;height:6000px"></iframe>
<script>
const frame = document.getElementById("page");
frame.addEventListener("load", () => {{
  const images = Array.from(frame.contentDocument.images);
  for (const img of images) {{ if (img.loading === "lazy") img.loading = "eager"; }}
  const done = images.map(img => img.complete ? Promise.resolve()
                                              : new Promise(ok => {{ img.onload = img.onerror = ok; }}));
  Promise.all(done).then(() => {{
    document.getElementById("result").textContent = JSON.stringify(images.map(img => (
      {{src: img.getAttribute("src"), width: img.naturalWidth, height: img.naturalHeight,
        shown: Math.round(img.getBoundingClientRect().width)}})));
  }});
}});
</script></body></html>"""


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the site, and at ``CHECK_PATH?page=P`` the checking page for page ``P``."""

    def do_GET(self):
        if self.path.startswith(CHECK_PATH + "?page="):
            body = CHECK_PAGE.format(page=quote(self.path.split("=", 1)[1], safe="/")).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            super().do_GET()

    def log_message(self, *args):
        pass


def _chromium() -> str | None:
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                None)


def _run(browser: str, *args: str, timeout: int = 90) -> str:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             "--virtual-time-budget=15000"]
    proc = subprocess.run([browser, *flags, *args], capture_output=True, text=True, timeout=timeout)
    return proc.stdout


def check_page(browser: str, base: str, page: str, out: Path, min_images: int) -> tuple[bool, str]:
    """Check one page; returns (passed, a one-line report) and writes ``out/<page>.png``."""
    dom = _run(browser, "--dump-dom", f"{base}{CHECK_PATH}?page={page}")
    match = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S)
    text = match.group(1) if match else "no result"
    try:
        images = json.loads(text.replace("&quot;", '"').replace("&amp;", "&"))
    except ValueError:
        return False, f"{page}: the checking page reported {text[:80]!r}"
    shot = out / (page.replace("/", "_").removesuffix(".html") + ".png")
    _run(browser, f"--screenshot={shot}", "--window-size=1280,1600", f"{base}/{page}")
    broken = [i["src"] for i in images if not (i["width"] > 0 and i["height"] > 0)]
    sizes = ", ".join(f"{i['width']}x{i['height']}" for i in images)
    passed = not broken and len(images) >= min_images and shot.exists()
    report = (f"{page}: {len(images)} images, {len(images) - len(broken)} rendered ({sizes}); "
              f"screenshot {shot.relative_to(ROOT) if shot.is_relative_to(ROOT) else shot}"
              + (f"; BROKEN: {', '.join(broken)}" if broken else "")
              + (f"; fewer than {min_images} images" if len(images) < min_images else ""))
    return passed, report


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--site", type=Path, default=ROOT / "docs" / "_build" / "html", help="the built site")
    p.add_argument("--pages", nargs="+", default=list(PAGES), help="pages relative to the site")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "_build" / "check", help="folder for screenshots")
    p.add_argument("--min-images", type=int, default=1, help="images each page must show (default 1)")
    args = p.parse_args(argv)
    browser = _chromium()
    if browser is None:
        print("check_docs: chromium not found (Debian: apt-get install -y chromium)", file=sys.stderr)
        return 2
    missing = [page for page in args.pages if not (args.site / page).is_file()]
    if missing:
        print(f"check_docs: not in the built site {args.site}: {', '.join(missing)} (build the docs first)",
              file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    handler = functools.partial(_Handler, directory=str(args.site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    failed = 0
    try:
        for page in args.pages:
            passed, report = check_page(browser, base, page, args.out.resolve(), args.min_images)
            print(("ok    " if passed else "FAIL  ") + report, flush=True)
            failed += not passed
    finally:
        server.shutdown()
        server.server_close()
    print(f"check_docs: {len(args.pages) - failed} of {len(args.pages)} pages render their figures")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
