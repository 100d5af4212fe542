"""`python3 -m freight.docs MANDIR COMPLETIONS`: write the man pages into MANDIR/man1 and the bash
completion into COMPLETIONS/freight; print `PACKAGE FILE` for each page, for the spec's file lists."""

from __future__ import annotations

import sys
from pathlib import Path

from freight.docs import completion, manpages
from freight.docs.parsers import documented


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    mandir, completions = Path(argv[0]) / "man1", Path(argv[1])
    mandir.mkdir(parents=True, exist_ok=True)
    completions.mkdir(parents=True, exist_ok=True)
    docs = list(documented())
    for doc in docs:
        (mandir / f"{doc.name}.1").write_text(manpages.page(doc, docs))
        print(doc.package, f"{doc.name}.1")
    (completions / "freight").write_text(completion.script(docs[0].parser, [d for d in docs if d.name.startswith("freight-") and d.name != "freight-host-hook"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
