"""The configuration reference, generated from the config schema (so the docs cannot drift).

:func:`reference_markdown` lists every ``section.key`` with its type, its default and the
largest value that runs where one is enforced (:func:`~recola_pipeline.config.size_limits`).
The documentation site's ``configuration.md`` holds the marker ``<!-- config-reference -->``;
``mkdocs.yml`` names this file as a hook, whose :func:`on_page_markdown` puts the table there.
"""
from __future__ import annotations

import dataclasses
import json
import typing

MARKER = "<!-- config-reference -->"


def reference_markdown() -> str:
    """A Markdown table of every configuration key: type, default, largest value that runs."""
    from recola_pipeline.config import MAX_LENGTH_S, RECORDING_LENGTHS, Config, size_limits  # loaded by path too
    config = Config()
    limits = {key: largest for key, _, largest in size_limits(config)}
    rows = ["| key | type | default | largest value |", "|---|---|---|---|"]
    for section in dataclasses.fields(Config):
        values = getattr(config, section.name)
        hints = typing.get_type_hints(type(values))
        for field in dataclasses.fields(values):
            key = f"{section.name}.{field.name}"
            kind = getattr(hints[field.name], "__name__", str(hints[field.name])).replace("typing.", "")
            if typing.get_origin(hints[field.name]) is list:
                kind = f"list of {typing.get_args(hints[field.name])[0].__name__}"
            largest = (f"the longest recording read (at least 60, at most {MAX_LENGTH_S:g})" if key in RECORDING_LENGTHS
                       else f"{limits[key]:g}" if key in limits else "")
            rows.append(f"| `{key}` | {kind} | `{json.dumps(getattr(values, field.name))}` | {largest} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, **kwargs) -> str:
    """mkdocs hook: the generated reference in place of :data:`MARKER`."""
    return markdown.replace(MARKER, reference_markdown()) if MARKER in markdown else markdown
