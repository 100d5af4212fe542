"""Man pages from the parsers, with argparse-manpage (Debian's and Fedora's python3-argparse-manpage).

One page per command, as git has them: freight(1) lists the commands, freight-COMMAND(1) gives one command's options, and
freight-host-hook(1) the scriptlet hook's. Each page goes to the package
that ships its command (freight.docs.parsers), so every package documents
what it installs. The pages carry no date: the same parsers give the same
bytes.
"""

from __future__ import annotations

import re

from freight.docs.parsers import Documented

EXIT_STATUS = (
    "0 success; 1 a failure (a tool, a repository, a signature, a changed file); "
    "2 bad input (arguments, manifest, lock, host.conf); 130 interrupted. "
    "outdated and affected also exit 100 when a rebuild is due or a container is affected."
)


def page(doc: Documented, others: list[Documented]) -> str:
    """The roff text of DOC's man page; freight(1) names OTHERS under SEE ALSO, the others freight(1)."""
    from build_manpages.manpage import Manpage

    doc.parser.man_short_description = doc.summary  # read by Manpage for the NAME line
    sections = []
    if doc.name.startswith("freight") and doc.name != "freight-host-hook":
        sections.append({"heading": "exit status", "content": EXIT_STATUS})
    doc.parser._manpage = sections
    man = Manpage(doc.parser)
    man.prog = doc.name
    text = str(man)
    if doc.name == "freight":  # the commands' options are on their own pages
        text = re.sub(r"^\.SH OPTIONS 'freight [^']+'\n(?:(?!\.SH ).*\n)*", "", text, flags=re.M)
    see_also = [o.name for o in others if o.name != "freight"] if doc.name == "freight" else ["freight"]
    # Written as roff here: argparse's filling would break the names at their hyphens.
    return text + ".SH SEE ALSO\n.nh\n.ad l\n" + ",\n".join(rf"\fB{_roff(name)}\fR(1)" for name in see_also) + "\n"


def _roff(name: str) -> str:
    return name.replace("-", r"\-")
