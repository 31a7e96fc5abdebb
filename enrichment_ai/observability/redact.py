"""Credentials out of everything the project prints or logs.

:func:`mask_url` is applied wherever a database or broker URL is shown (CLI output, log
lines); :class:`Redactor` is a last line of defence on every log handler of a worker:
it replaces the configured passwords, and any ``scheme://user:password@`` or
``password=…`` it sees, with ``***``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit, urlunsplit

MASK = "***"
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]+)@")
_KV_PASSWORD = re.compile(r"(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s]+)")


def mask_url(url: str | None) -> str | None:
    """``url`` (a URL or a libpq ``key=value`` conninfo) with its password replaced by ``***``."""
    if not url:
        return url
    if "://" not in url:
        return _KV_PASSWORD.sub(rf"\g<1>{MASK}", url)
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            netloc = f"{userinfo.split(':', 1)[0]}:{MASK}@{host}"
    query = _KV_PASSWORD.sub(rf"\g<1>{MASK}", parts.query)
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # nothing to mask (and urlunsplit would drop an empty "//" netloc)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def passwords_in(urls: Iterable[str | None]) -> list[str]:
    """The passwords the given URLs/conninfos carry (to redact them verbatim anywhere)."""
    found: list[str] = []
    for url in urls:
        if not url:
            continue
        if "://" in url:
            parts = urlsplit(url)
            if parts.password:
                found += [parts.password, unquote(parts.password)]
        for m in _KV_PASSWORD.finditer(url):
            found.append(unquote(m.group(2).strip("'")))
    return sorted({p for p in found if len(p) >= 3}, key=len, reverse=True)


class Redactor:
    """Replace known secrets and URL/conninfo passwords in a string."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = [s for s in secrets if s]

    def __call__(self, text: str) -> str:
        for s in self.secrets:
            if s in text:
                text = text.replace(s, MASK)
        text = _URL_USERINFO.sub(rf"\g<scheme>\g<user>:{MASK}@", text)
        return _KV_PASSWORD.sub(rf"\g<1>{MASK}", text)
