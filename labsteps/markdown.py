"""Server-side Markdown for step texts, hints and solutions.

CommonMark plus tables, with raw HTML switched off: any `<tag>` in the source is shown as text, and
markdown-it's link validation drops `javascript:` and similar URLs. The output is safe to insert into a
page as it is.
"""

from __future__ import annotations

from functools import lru_cache

from markdown_it import MarkdownIt

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
    ["table", "strikethrough"]
)


@lru_cache(maxsize=512)
def render_markdown(text: str) -> str:
    """HTML for `text` (cached: the same step text is rendered for every page view)."""
    return _md.render(text)
