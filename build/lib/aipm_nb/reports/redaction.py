"""The one owner of secret handling: find credentials in URLs and text, and scrub outputs.

Passwords in connection URLs may hold any character (``/ # @ % : ?``) unencoded, which
``urllib.parse`` splits in the wrong place; the parser here takes the *last* ``@`` that is
followed by a host name as the end of the credentials, so a password is never cut short
(a query string holding an ``@`` may be over-redacted, which is the safe side).

Redaction is structural: `Scrubber.scrub` walks a notebook / summary object and rewrites its
strings; it never runs a regular expression over serialised JSON.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

__all__ = [
    "SECRET_QUERY_KEYS",
    "Scrubber",
    "encode_password",
    "redact",
    "secret_fragments",
    "split_credentials",
    "url_secrets",
]

#: Query keys whose values are secrets (``?password=…``, ``&token=…``).
SECRET_QUERY_KEYS = frozenset(
    {"password", "pass", "pwd", "secret", "token", "key", "api_key", "apikey", "access_token"}
)
_SCHEME = r"[A-Za-z][A-Za-z0-9+.-]*://"
_HOST = r"(?:[A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(?::\d*)?"
_HOST_RE = re.compile(rf"{_HOST}(?=[/?#]|$)")
_USER = r"[^\s:/@?#'\"<>]*"
# In free text: the credentials run to the last '@' of the token that is followed by a host.
_TEXT_URL_RE = re.compile(rf"({_SCHEME}{_USER}):([^\s'\"<>]*)@(?={_HOST})")
_QUERY_KEYS = "|".join(sorted(SECRET_QUERY_KEYS, key=len, reverse=True))
_TEXT_QUERY_RE = re.compile(rf"(?i)([?&;](?:{_QUERY_KEYS})=)([^&;\s'\"<>)\]]+)")
_SPECIAL = "/#@%:?&="
MIN_FRAGMENT = 4


@dataclass(frozen=True)
class Credentials:
    """A URL split around its password: ``prefix + ":" + password + "@" + rest``."""

    prefix: str  # "scheme://user"
    password: str
    rest: str  # "host[:port]/path?query"


def split_credentials(url: str) -> Credentials | None:
    """Split a connection URL at its password, whatever characters the password holds.

    Examples:
        >>> split_credentials("postgresql://ana:pa/ss#w@rd@db:5432/prod")
        Credentials(prefix='postgresql://ana', password='pa/ss#w@rd', rest='db:5432/prod')
        >>> split_credentials("postgresql://ana@db/prod") is None
        True
    """
    m = re.match(rf"({_SCHEME}{_USER}):", url)
    if not m:
        return None
    tail = url[m.end() :]
    for at in reversed([i for i, ch in enumerate(tail) if ch == "@"]):
        if _HOST_RE.match(tail, at + 1):
            return Credentials(m.group(1), tail[:at], tail[at + 1 :])
    return None


def encode_password(url: str) -> str:
    """The URL with its password percent-encoded so that standard URL parsers read it whole.

    A password that is already valid percent-encoding is left alone.

    Examples:
        >>> encode_password("postgresql://u:a/b#c@h/db")
        'postgresql://u:a%2Fb%23c@h/db'
        >>> encode_password("postgresql://u:p%40ss@h/db")
        'postgresql://u:p%40ss@h/db'
    """
    cred = split_credentials(url)
    if cred is None:
        return url
    pw = re.sub(r"%(?![0-9A-Fa-f]{2})", "%25", cred.password)
    return f"{cred.prefix}:{quote(pw, safe='%')}@{cred.rest}"


def url_secrets(text: str) -> list[str]:
    """Passwords and secret query values found in ``text`` (a URL or free text).

    Examples:
        >>> url_secrets("see postgresql://u:s3/cr#t@h/db and https://x/?token=abc123&q=1")
        ['s3/cr#t', 'abc123']
    """
    out = []
    cred = split_credentials(text)
    if cred is not None:
        out.append(cred.password)
    else:
        out += [m.group(2) for m in _TEXT_URL_RE.finditer(text)]
    out += [m.group(2) for m in _TEXT_QUERY_RE.finditer(text)]
    return [s for s in dict.fromkeys(out) if s]


def secret_fragments(secret: str) -> set[str]:
    """The strings to scrub for one secret: itself, its encodings, and the pieces a parser that
    splits at ``/ # @ % : ?`` could print (each piece, prefix and suffix of 4+ characters).

    Examples:
        >>> sorted(secret_fragments("abcd/efgh"))
        ['abcd', 'abcd%2Fefgh', 'abcd/efgh', 'efgh']
    """
    forms = {secret, quote(secret, safe=""), unquote(secret), html.escape(secret)}
    forms.add(json.dumps(secret)[1:-1])
    cuts = [i for i, ch in enumerate(secret) if ch in _SPECIAL]
    for i in cuts:
        forms.update((secret[:i], secret[i + 1 :]))
    forms.update(re.split(f"[{re.escape(_SPECIAL)}]", secret))
    return {f for f in forms if len(f) >= MIN_FRAGMENT}


def redact(text: str) -> str:
    """Hide passwords and secret query values of every URL in ``text``.

    Examples:
        >>> redact("postgresql://ana:s3cret@db.example.com:5432/prod")
        'postgresql://ana:***@db.example.com:5432/prod'
        >>> redact("postgresql://ana:s3/c#r@et@db:5432/prod")
        'postgresql://ana:***@db:5432/prod'
        >>> redact('[dashboard](https://bi.example.com/d?key=abc123)')
        '[dashboard](https://bi.example.com/d?key=***)'
    """
    text = _TEXT_URL_RE.sub(r"\1:***@", str(text))
    return _TEXT_QUERY_RE.sub(r"\1***", text)


def _is_binary_image(key: object) -> bool:
    return isinstance(key, str) and key.startswith("image/") and not key.endswith("svg+xml")


class Scrubber:
    """Removes known secret values (and all their fragments) and URL passwords from outputs."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        frags: set[str] = set()
        for s in secrets:
            if s and len(s) >= MIN_FRAGMENT:
                frags.add(s)
            for found in url_secrets(s) if s else ():
                frags |= secret_fragments(found)
        self.fragments = sorted(frags, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self.fragments)

    def text(self, value: str) -> str:
        """``value`` with every known secret fragment replaced by ``***`` and URLs redacted."""
        for frag in self.fragments:
            value = value.replace(frag, "***")
        return redact(value)

    def scrub(self, obj: Any) -> Any:
        """A copy of a JSON-like object (notebook, summary) with every string scrubbed.

        Base64 image outputs (``image/png``...) are kept as they are: text cannot leak through
        them, and a 4-character fragment matching by chance would corrupt the picture.

        Examples:
            >>> s = Scrubber(["postgresql://u:abcd/efgh@h/db"])
            >>> s.scrub({"text/plain": "efgh!", "image/png": "QUJDRGVmZ2g="})
            {'text/plain': '***!', 'image/png': 'QUJDRGVmZ2g='}
        """
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {k: v if _is_binary_image(k) else self.scrub(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.scrub(v) for v in obj]
        return obj
