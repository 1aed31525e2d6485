"""Escaping for everything that comes from data or config and reaches Markdown or HTML.

Variant, segment, event, column and model names, titles and error texts are user data: a
variant named ``<img src=x onerror=...>`` must show as text, never run as script. Every
presentation function passes such values through `md` (Markdown) or `html_text` (HTML).
"""

from __future__ import annotations

import html
import re
from typing import Any

__all__ = ["html_text", "md"]

# Markdown punctuation that could start emphasis, code, links, tables or headings ('<' and
# '>' are already HTML entities, so no tag or autolink can form).
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#~])")


def md(value: Any) -> str:
    r"""``value`` as literal Markdown text: HTML escaped, Markdown punctuation backslashed.

    Examples:
        >>> md("<img src=x onerror=alert(1)>")
        '&lt;img src=x onerror=alert(1)&gt;'
        >>> print(md("it's a 'quote'"))
        it's a 'quote'
        >>> md("plan_a | b")
        'plan\\_a \\| b'
    """
    # quote=False: Markdown renderers show '&#x27;' literally, and quotes cannot open a tag
    text = html.escape(str(value), quote=False).replace("\n", " ")
    return _MD_SPECIAL.sub(r"\\\1", text)


def html_text(value: Any) -> str:
    """``value`` escaped for HTML text and attribute values.

    Examples:
        >>> html_text('<script>"x"</script>')
        '&lt;script&gt;&quot;x&quot;&lt;/script&gt;'
    """
    return html.escape(str(value), quote=True)
