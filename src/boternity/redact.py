"""Keeping credentials out of everything boternity prints, logs or stores.

One helper for every URL boternity shows (LLM base URLs, PostgreSQL URLs) and for free text
that may quote one (driver and HTTP errors, a server echoing a request back): a key given as
URL userinfo (``http://sk-…@host``) or as a query parameter (``?api-key=…``,
``?password=…``, ``sslpassword=…``) must never reach an error message, a log line, the
extraction queue's stored ``error_message`` or a backup.
"""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections.abc import Iterable

MASK = "***"

# A query parameter whose name contains one of these is a credential (password, sslpassword,
# api-key, api_key, apikey, access_token, secret, auth, sig, …).
_SECRET_NAME = re.compile(r"pass|pwd|secret|token|key|auth|sig|cred|session|cookie", re.I)
# Things that look like OpenAI/Anthropic keys (sk-…, sk-ant-…, sk-proj-…), wherever they are.
_KEYLIKE = re.compile(r"\bsk-[A-Za-z0-9_\-*]{6,}")
# URLs inside free text (an error message quoting the request URL).
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")
# Schemes whose lone userinfo is a user name, not a credential (postgresql://postgres@host).
_USER_SCHEMES = ("postgres", "postgresql", "sqlite")


def redact_url(url: str) -> str:
    """``url`` safe to show: credentials in its userinfo and query replaced by ``***``.

    For HTTP(S) the whole userinfo goes (``https://TOKEN@host`` is how tokens are passed);
    for database URLs the user name stays (it says who connects) and the password goes.
    """
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # e.g. an unbalanced "[" in the host: mask what looks secret
        return _KEYLIKE.sub("sk-" + MASK, _mask_query_text(_mask_userinfo_text(url)))
    netloc = parts.netloc
    userinfo, at, host = netloc.rpartition("@")
    if at:
        user, colon, _password = userinfo.partition(":")
        if parts.scheme.lower() in _USER_SCHEMES and not _KEYLIKE.search(user):
            userinfo = f"{user}:{MASK}" if colon else user
        else:
            userinfo = MASK
        netloc = f"{userinfo}@{host}"
    query = _mask_query(parts.query)
    redacted = urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=query))
    return _KEYLIKE.sub("sk-" + MASK, redacted)


def url_secrets(url: str) -> list[str]:
    """The credentials in ``url`` (userinfo, secret query values), raw and decoded, and the
    HTTP basic-auth token they make, so text echoing any of them can be redacted."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return []
    found: list[str] = []
    userinfo, at, _host = parts.netloc.rpartition("@")
    if at:
        user, colon, password = userinfo.partition(":")
        if parts.scheme.lower() not in _USER_SCHEMES:
            found.append(user)
            plain = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}"
            found.append(base64.b64encode(plain.encode()).decode())
        if colon:
            found.append(password)
    for name, value in _pairs(parts.query):
        if _SECRET_NAME.search(urllib.parse.unquote_plus(name)):
            found.append(value)
    found += [urllib.parse.unquote_plus(s) for s in found]
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with each of ``secrets``, every URL's credentials and anything key-like masked."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
    return _KEYLIKE.sub("sk-" + MASK, text)


def _pairs(query: str) -> list[tuple[str, str]]:
    out = []
    for field in query.split("&"):
        name, _, value = field.partition("=")
        out.append((name, value))
    return out


def _mask_query(query: str) -> str:
    if not query:
        return query
    fields = []
    for field in query.split("&"):
        name, eq, value = field.partition("=")
        if eq and value and _SECRET_NAME.search(urllib.parse.unquote_plus(name)):
            value = MASK
        fields.append(f"{name}{eq}{value}")
    return "&".join(fields)


def _mask_userinfo_text(url: str) -> str:
    return re.sub(r"(://)[^/?#@\s]*@", rf"\g<1>{MASK}@", url)


def _mask_query_text(url: str) -> str:
    base, question, query = url.partition("?")
    return base + question + _mask_query(query) if question else url
