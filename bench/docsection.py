"""The benchmarks' sections of docs/benchmarks.md: each script writes its tables, from its JSON,
between its own markers; the prose around them is written by hand."""

from __future__ import annotations

from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start (written by bench/{name}.py) -->", f"<!-- {name}:end -->"


def write_section(name: str, body: str, docs: Path = DOCS) -> None:
    """Replaces the text between `name`'s markers with `body` (appends the section when absent;
    creates `docs` when it does not exist). A bare `<!-- name:start -->` marker counts as `name`'s."""
    start, end = markers(name)
    text = docs.read_text() if docs.exists() else ""
    section = f"{start}\n{body.strip()}\n{end}"
    found = next((m for m in (start, f"<!-- {name}:start -->") if m in text), None)
    if found and end in text:
        text = text[: text.index(found)] + section + text[text.index(end) + len(end):]
    else:
        text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + section + "\n"
    docs.write_text(text)
