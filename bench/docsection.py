"""The benchmarks' sections of docs/benchmarks.md: each script writes its tables, from its JSON,
between its own markers; the prose around them is written by hand."""

from __future__ import annotations

from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def markers(name: str, by: str | None = None) -> tuple[str, str]:
    """The section's markers; `by` names what writes it (default: `bench/<name>.py`)."""
    return f"<!-- {name}:start (written by {by or f'bench/{name}.py'}) -->", f"<!-- {name}:end -->"


def write_section(name: str, body: str, docs: Path = DOCS, by: str | None = None) -> None:
    """Replaces the text between `name`'s markers with `body` (appends the section when absent;
    creates `docs` when it does not exist). A marker of `name` written by another writer, or a bare
    `<!-- name:start -->`, counts as `name`'s."""
    start, end = markers(name, by)
    text = docs.read_text() if docs.exists() else ""
    if start not in text and f"<!-- {name}:start" in text:  # written before by another writer's name
        start = text[text.index(f"<!-- {name}:start") :].split("-->", 1)[0] + "-->"
    section = f"{start}\n{body.strip()}\n{end}"
    found = next((m for m in (start, f"<!-- {name}:start -->") if m in text), None)
    if found and end in text:
        text = text[: text.index(found)] + section + text[text.index(end) + len(end) :]
    else:
        text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + section + "\n"
    docs.write_text(text)
