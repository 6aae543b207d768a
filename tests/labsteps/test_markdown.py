"""Step texts are rendered on the server, and nothing in them can inject markup or script."""

from __future__ import annotations

from labsteps.markdown import render_markdown


def test_markdown_renders_and_escapes_raw_html() -> None:
    html = render_markdown("**bold** `code` <script>alert(1)</script>\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    assert "<strong>bold</strong>" in html and "<code>code</code>" in html and "<table>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_dangerous_links_are_not_links() -> None:
    html = render_markdown("[click](javascript:alert(1)) [ok](https://istio.io/)")
    assert 'href="javascript' not in html and '<a href="https://istio.io/">ok</a>' in html
