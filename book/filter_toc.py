"""Write a copy of book/_toc.yml that lists only the chapters present on disk.

The notebooks land one by one; the book must build from those that exist. Usage (from the repo root):

    python book/filter_toc.py book/_toc.yml book/_build/_toc.yml

Prints which listed files are missing (they are dropped from the copy) and exits 0; exits 1 if the
root page itself is missing. With FXQ_BOOK_STRICT_TOC=1 a missing chapter is an error instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml

SUFFIXES = (".ipynb", ".md")


def exists(file: str) -> bool:
    p = Path(file)
    return p.is_file() or any(p.with_name(p.name + s).is_file() for s in SUFFIXES)


def main(src: str, dst: str) -> int:
    toc = yaml.safe_load(Path(src).read_text())
    if not exists(toc["root"]):
        print(f"filter_toc: root page {toc['root']} is missing", file=sys.stderr)
        return 1
    missing: list[str] = []
    kept = 0
    for part in toc.get("parts", []):
        chapters = []
        for chapter in part.get("chapters", []):
            if "glob" in chapter:  # a glob entry lists whatever matches; count the matches
                found = sorted(Path().glob(chapter["glob"] + ".md"))
                if found:
                    chapters.append(chapter)
                    kept += len(found)
                else:
                    missing.append(chapter["glob"])
                continue
            if exists(chapter["file"]):
                chapters.append(chapter)
                kept += 1
            else:
                missing.append(chapter["file"])
        part["chapters"] = chapters
    toc["parts"] = [part for part in toc.get("parts", []) if part["chapters"]]
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    Path(dst).write_text(yaml.safe_dump(toc, sort_keys=False))
    print(
        f"book: {kept} pages in the table of contents"
        + (f"; missing, left out: {', '.join(missing)}" if missing else "")
    )
    if missing and os.environ.get("FXQ_BOOK_STRICT_TOC") == "1":
        print("filter_toc: FXQ_BOOK_STRICT_TOC=1 and chapters are missing", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
