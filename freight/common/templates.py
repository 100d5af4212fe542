"""Rendering freight's jinja2 templates: the container spec on the build side, the
nspawn settings, unit drop-ins and repo files on both.

Templates ship in `/usr/share/freight/templates` (each package the ones it
uses); a source checkout uses its own `templates/`.
"""

from __future__ import annotations

import os
from pathlib import Path

import jinja2

from freight.common.errors import FreightError


def template_path(template: str) -> Path:
    """TEMPLATE in `$FREIGHT_TEMPLATES`, the source tree's `templates/`, or the installed copy.

    Found per template, not per folder: a host has freight-host's templates and
    not the build's."""
    source_tree = Path(__file__).resolve().parents[2] / "templates"
    for folder in (os.environ.get("FREIGHT_TEMPLATES"), source_tree, "/usr/share/freight/templates"):
        if folder and (Path(folder) / template).is_file():
            return Path(folder) / template
    raise FreightError(
        f"freight's template {template} is missing (looked in $FREIGHT_TEMPLATES, {source_tree} and /usr/share/freight/templates)"
    )


def render(template: str, **context: object) -> str:
    path = template_path(template)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(path.parent),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    return env.get_template(template).render(**context)
