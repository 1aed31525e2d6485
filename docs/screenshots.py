"""Screenshots of the report index and every report, as a reader sees them (issue 13).

    python docs/screenshots.py [REPORTS_DIR] [OUT_DIR]      # or: make screenshots

For the index and each report HTML under REPORTS_DIR (default ``reports/``, the output of
``make report``) headless Chromium takes the first screen (1280 x 1000, ``NAME.png``) and the
whole page (``NAME-full.png``: a tall window cropped to the page's end, 256 colours to keep the
repository small). Needs Chromium on PATH (it has no wheel: ``apt-get install chromium``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageChops

WIDTH, FIRST_SCREEN, TALLEST = 1280, 1000, 16000


def chromium() -> str:
    """The Chromium executable on PATH, or exit with how to install it."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    sys.exit("no Chromium on PATH (it has no wheel): install it, e.g. `apt-get install chromium`")


def shoot(page: Path, png: Path, height: int) -> None:
    """Screenshot ``page`` into ``png`` in a WIDTH x ``height`` window, with a fresh profile."""
    with tempfile.TemporaryDirectory() as profile:
        cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-quic", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}",
               f"--window-size={WIDTH},{height}", "--virtual-time-budget=3000",
               f"--screenshot={png}", page.resolve().as_uri()]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)


def crop_to_content(png: Path) -> None:
    """Cut the tall window's empty bottom (the rows that equal the last row's colour)."""
    img = Image.open(png).convert("RGB")
    background = Image.new("RGB", img.size, img.getpixel((0, img.height - 1)))
    box = ImageChops.difference(img, background).getbbox()
    bottom = min(img.height, (box[3] if box else img.height) + 24)
    img = img.crop((0, 0, img.width, bottom))
    img.quantize(colors=256, dither=Image.Dither.NONE).save(png, optimize=True)


def main(reports: Path, out: Path) -> list[Path]:
    """Both screenshots of the index and of every report under ``reports``; the files written."""
    index = reports / "index.html"
    if not index.is_file():
        sys.exit(f"{index} not found: run `make report` first")
    out.mkdir(parents=True, exist_ok=True)
    pages = [index, *sorted(p for p in reports.glob("*/*.html"))]
    written = []
    for page in pages:
        name = "index" if page == index else page.stem
        first, full = out / f"{name}.png", out / f"{name}-full.png"
        shoot(page, first, FIRST_SCREEN if page != index else 760)
        shoot(page, full, TALLEST)
        crop_to_content(full)
        written += [first, full]
        print(f"{page.relative_to(reports)} -> {first.name}, {full.name}")
    return written


if __name__ == "__main__":
    defaults = ["reports", "docs/screenshots"]
    given = sys.argv[1:3]
    main(*(Path(a) for a in given + defaults[len(given) :]))
