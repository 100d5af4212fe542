"""A tiny libmagic database for rpmbuild's file classification.

rpmbuild runs libmagic over every file it packs, and with the full database
that costs about 1 ms a file: most of the time of packing a large root
filesystem. Dependency generation is off for containers, so the only thing
the classes are still used for is the ELF colour of each file (32-bit or
64-bit, which multilib installs rely on). rpm reads the colour from the words
"ELF 32-bit"/"ELF 64-bit" in the class, so a database with just the ELF rules
keeps every colour right and makes classification nearly free. libmagic's
built-in text detection still names text files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from freight.common.dirs import cache_dir
from freight.common.run import run

ELF_MAGIC = """\
# freight: the ELF rules rpmbuild needs for file colouring, nothing else.
0\tstring\t\\177ELF\tELF
>4\tbyte\t1\t32-bit
>4\tbyte\t2\t64-bit
>5\tbyte\t1\tLSB
>5\tbyte\t2\tMSB
>16\tleshort\t1\trelocatable
>16\tleshort\t2\texecutable
>16\tleshort\t3\tshared object
>16\tleshort\t4\tcore file
"""


def small_magic_db() -> Path:
    """Compile the ELF-only database once per content into freight's cache; return the .mgc path."""
    digest = hashlib.sha256(ELF_MAGIC.encode()).hexdigest()[:16]
    folder = cache_dir() / "magic" / digest
    compiled = folder / "elf.mgc"
    if not compiled.exists():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "elf").write_text(ELF_MAGIC)
        run(["file", "-C", "-m", "elf"], cwd=folder)
    return compiled
