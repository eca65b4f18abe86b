"""Text from outside the app (URL values, file names, lesson fields, error messages that quote
them) shown as text, never interpreted.

Streamlit renders the body of st.info / st.error / st.caption / st.title / radio labels as
GitHub-flavoured Markdown plus its own `:color[...]`, `:material/icon:` and `$math$`. A link
someone sends (`/?loss=[Log in again](https://evil.example/x)`) would otherwise put a live
external link, or an image the browser fetches (`![p](http://host/pixel.png)`), inside the
app's own notice. CommonMark lets a backslash escape any ASCII punctuation, which turns every
such construct back into its literal characters. GitHub's autolinks (`https://...`, `www.`,
`name@host`) ignore escapes, so an invisible WORD JOINER (U+2060) goes after `://`, `www` and
`@`: the text looks the same and no longer forms a link.
"""

from __future__ import annotations

import re

# Every ASCII punctuation character (CommonMark §2.4): escaping them all is always safe.
_PUNCTUATION = re.compile(r"""([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])""")
_AUTOLINK = re.compile(r"(://|\bwww(?=\.)|@)", re.IGNORECASE)
_JOINER = "\u2060"


def plain(text: object) -> str:
    """`text` as one line of literal characters for any Streamlit Markdown element."""
    one_line = " ".join(str(text).split())
    unlinked = _AUTOLINK.sub(lambda found: found.group(1) + _JOINER, one_line)
    return _PUNCTUATION.sub(r"\\\1", unlinked)
