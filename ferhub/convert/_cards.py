"""Model-card prose of the zoo's converted models, kept as markdown in ``ferhub/templates/zoo/`` and rendered
here (Jinja2) into ``hub.save``'s ``card_context`` vocabulary.

A model's file ``templates/zoo/<model name>.md`` holds sections, each started by a line ``<!-- key -->``; the
converter passes only the values that vary (file digests, what a pickle scan found). The prose every converted
model shares (intended use, common limitations, the provenance table) lives in ``templates/zoo/_*.md``.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2

    from ferhub.convert._fetch import SourcePackage

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
_SECTION = re.compile(r"^<!-- (\w+) -->\n", re.MULTILINE)
# the provenance table's parts: sections of a model's file that go into templates/zoo/_provenance.md
_PROVENANCE_PARTS = ("license_note", "file_format", "upstream", "conversion", "verification")


@functools.cache
def _env() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined, autoescape=False
    )


def prose(name: str, **values: Any) -> dict[str, Any]:
    """The rendered sections of ``templates/zoo/<name>.md``, by key (``upstream_claims`` as a list)."""
    text = (TEMPLATES / "zoo" / f"{name}.md").read_text(encoding="utf-8")
    parts = _SECTION.split(text)[1:]  # [key, body, key, body, ...]; the file's leading comment dropped
    sections: dict[str, Any] = {
        key: _env().from_string(body).render(**values).strip() for key, body in zip(parts[::2], parts[1::2])
    }
    if "upstream_claims" in sections:
        sections["upstream_claims"] = [sections["upstream_claims"]] if sections["upstream_claims"] else []
    return sections


def zoo_card(
    name: str, source: SourcePackage, *, archive: str, file: str, file_sha256: str, **values: Any
) -> dict:
    """A converted model's card prose (:func:`prose`) with the shared provenance table filled in from
    ``source``
    (the pinned registry archive), ``archive`` / ``file`` (its name and the member converted) and
    ``file_sha256``.
    """
    sections = prose(name, **values)
    table = {part: sections.pop(part) for part in _PROVENANCE_PARTS}
    pypi = source.registry == "pypi"
    url = (
        f"https://pypi.org/project/{source.name}/{source.version}/"
        if pypi
        else f"https://www.npmjs.com/package/{source.name}/v/{source.version}"
    )
    provenance = _env().get_template("zoo/_provenance.md").render(
        source=source, url=url, registry="PyPI" if pypi else "npm", archive=archive, file=file,
        file_sha256=file_sha256, **table,
    )  # fmt: skip
    return {**sections, "provenance": provenance.strip()}
