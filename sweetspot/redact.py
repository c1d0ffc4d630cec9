"""No secret in a results folder: storage URLs name their password as `${VAR}`, expanded from the
environment only when a connection is made.

`search.study_storage` (an RDB URL such as `postgresql://user:secret@host/db`) is written into
`sweetspot.yaml`, pickled into Tune's state with the searcher, and may reach logs and error lines.
So sweetspot keeps the URL as written, with `${VAR}` references (`postgresql://user:${PGPASSWORD}@host/db`),
everywhere it is stored, and expands it (`expand`) only to connect. A URL with a literal password is
refused (`literal_secret` says where it is); `redact` hides passwords in any text shown.

Example:
    >>> redact("postgresql://ann:hunter2@db:5432/s?sslmode=require&password=x1")
    'postgresql://ann:***@db:5432/s?sslmode=require&password=***'
    >>> literal_secret("postgresql://ann:hunter2@db/s"), literal_secret("postgresql://ann:${PW}@db/s")
    ('the password after the user name', None)
    >>> expand("postgresql://ann:${PW}@db/s", environ={"PW": "hunter2"}, key="search.study_storage")
    'postgresql://ann:hunter2@db/s'
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from urllib.parse import quote

ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# scheme://user:PASSWORD@ — the password runs to the last '@' before the host
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)(?P<secret>[^\s/]*)(?P<at>@)")
# ?password=… &pwd=… &token=… &secret=… &api_key=… (a query parameter whose name says secret)
_QUERY = re.compile(r"(?P<head>[?&][^=&\s#]*(?:pass|pwd|secret|token|key)[^=&\s#]*=)(?P<secret>[^&\s#]*)", re.IGNORECASE)
MASK = "***"


def _only_references(value: str) -> bool:
    return ENV_REFERENCE.fullmatch(value) is not None or value in ("", MASK)


def redact(text: str) -> str:
    """`text` with every URL password and secret-named query value replaced by `***` (`${VAR}`
    references are kept: they are not secrets). A database URL's password is found by SQLAlchemy's
    parser (it may hold `/`)."""

    def mask(m: re.Match) -> str:
        if _only_references(m.group("secret")):
            return m.group(0)
        return m.group("head") + MASK + (m.groupdict().get("at") or "")

    text = _QUERY.sub(mask, _USERINFO.sub(mask, text))
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:  # a password the pattern missed (one holding `/`)
        parsed = make_url(text.strip())
        if parsed.password is not None and not _only_references(str(parsed.password)):
            text = _QUERY.sub(mask, parsed.render_as_string(hide_password=True))
    except (ArgumentError, ValueError, TypeError):
        pass
    return text


def literal_secret(url: str) -> str | None:
    """Where `url` holds a secret written out (not as `${VAR}`), in words; None when it holds none.
    A database URL is read by SQLAlchemy's own parser (`make_url`: a password may hold `/`, `:` or
    `@`); anything else by the patterns `redact` uses."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError):
        parsed = None
    if parsed is not None:
        if parsed.password is not None and not _only_references(str(parsed.password)):
            return "the password after the user name"
        for name, value in parsed.query.items():
            secret = re.search(r"pass|pwd|secret|token|key", name, re.IGNORECASE)
            if secret and any(not _only_references(v) for v in ((value,) if isinstance(value, str) else value)):
                return f"the query parameter {name!r}"
        return None
    m = _USERINFO.search(url)
    if m and not _only_references(m.group("secret")):
        return "the password after the user name"
    for m in _QUERY.finditer(url):
        if not _only_references(m.group("secret")):
            return f"the query parameter {m.group('head')[1:-1]!r}"
    return None


def expand(template: str, *, key: str, environ: Mapping[str, str] | None = None, url: bool = False) -> str:
    """`template` with each `${VAR}` replaced by the environment's value; a variable that is not
    set raises `KeyError` with a one-line message naming `key` and the variable. With `url`, each
    value is percent-encoded (but `/`), so a password with `@`, `%` or `{}` stays a password; a
    template that is one variable alone is taken as the whole URL."""
    env = os.environ if environ is None else environ
    whole = ENV_REFERENCE.fullmatch(template) is not None

    def value(m: re.Match) -> str:
        if m.group(1) not in env:
            raise KeyError(f"{key}: the environment variable {m.group(1)} is not set (it is named as ${{{m.group(1)}}})")
        return quote(env[m.group(1)], safe="/") if url and not whole else env[m.group(1)]

    return ENV_REFERENCE.sub(value, template)
