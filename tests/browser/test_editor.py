"""The YAML editor (static/js/editor.js) in Chromium: highlighting, keys, problem marks, scrolling.

The page is the editor alone, served with the repository's static files from a loopback HTTP server,
so these tests need no console backend.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

expect = pytest.importorskip("playwright.sync_api").expect
pytestmark = pytest.mark.browser

STATIC = Path(__file__).resolve().parents[2] / "static"
PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8">
<link rel="stylesheet" href="/static/css/console.css"><link rel="stylesheet" href="/static/css/lab.css">
<script src="/static/js/editor.js"></script></head>
<body><main class="page"><textarea id="editor"></textarea><button id="after">after</button></main>
<script>window.editor = new MeshConsole.Editor(document.getElementById("editor"));</script>
</body></html>"""
MANIFEST = """\
# a comment
apiVersion: apps/v1
kind: Deployment
metadata:
  name: "splitdim"
spec:
  replicas: 2
  paused: false
  template:
    spec:
      containers:
        - name: splitdim
          args: [--port, 8080]
          env: {MODE: kvstore}
script: |
  echo one: two
  # not a comment
after: x
---
kind: Service
"""


class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/":
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)
            return
        super().do_GET()

    def translate_path(self, path: str) -> str:
        return super().translate_path(path.removeprefix("/static"))

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def editor_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(STATIC)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def editor_page(page, editor_url: str):
    page.goto(editor_url)
    page.wait_for_function("window.editor !== undefined")
    return page


def tokens(page, text: str) -> list[tuple[str, str]]:
    """(class, text) of every highlighted span the editor renders for `text`."""
    found = page.evaluate(
        """text => {
            const box = document.createElement("div");
            box.innerHTML = MeshConsole.highlightYaml(text);
            return [...box.querySelectorAll("span")].map(s => [s.className.replace("tok-", ""), s.textContent]);
        }""",
        text,
    )
    return [tuple(token) for token in found]


def test_highlights_yaml_tokens(editor_page) -> None:
    found = tokens(editor_page, MANIFEST)
    for expected in [
        ("com", "# a comment"),
        ("key", "apiVersion"),
        ("str", "apps/v1"),
        ("str", '"splitdim"'),
        ("num", "2"),
        ("lit", "false"),
        ("punct", "-"),
        ("punct", "["),
        ("str", "--port"),
        ("num", "8080"),
        ("key", "MODE"),
        ("punct", "|"),
        ("str", "  echo one: two"),
        ("str", "  # not a comment"),  # inside the block scalar
        ("key", "after"),  # the block scalar ended at the dedent
        ("doc", "---"),
    ]:
        assert expected in found, f"{expected} not in {found}"
    assert ("key", "echo one") not in found


def test_highlighting_escapes_html(editor_page) -> None:
    html = editor_page.evaluate("MeshConsole.highlightYaml('a: <img src=x onerror=alert(1)>')")
    assert "<img" not in html and "&lt;img" in html


def test_typing_updates_highlight_and_line_numbers(editor_page) -> None:
    editor_page.fill("#editor", MANIFEST)
    expect(editor_page.locator(".editor-highlight")).to_have_text(MANIFEST + "\n", use_inner_text=True)
    expect(editor_page.locator(".editor-gutter span")).to_have_count(MANIFEST.count("\n") + 1)
    expect(editor_page.locator(".editor-highlight .tok-key", has_text="replicas")).to_have_count(1)


def test_tab_enter_and_escape(editor_page) -> None:
    editor = editor_page.locator("#editor")
    editor.click()
    editor_page.keyboard.type("metadata:")
    editor_page.keyboard.press("Enter")  # indents after a mapping key
    editor_page.keyboard.type("name: x")
    editor_page.keyboard.press("Enter")  # keeps the indentation
    editor_page.keyboard.press("Tab")  # inserts spaces instead of leaving the field
    editor_page.keyboard.type("y")
    assert editor.input_value() == "metadata:\n  name: x\n    y"
    assert editor_page.evaluate("document.activeElement.id") == "editor"

    editor_page.keyboard.press("Control+a")
    editor_page.keyboard.press("Shift+Tab")  # outdents every selected line
    assert editor.input_value() == "metadata:\nname: x\n  y"
    editor_page.keyboard.press("Control+z")  # edits stay on the native undo stack
    assert editor.input_value() == "metadata:\n  name: x\n    y"

    editor_page.keyboard.press("Escape")
    editor_page.keyboard.press("Tab")  # Esc releases Tab: focus moves on (no keyboard trap)
    assert editor_page.evaluate("document.activeElement.id") == "after"


def test_problems_are_marked_at_their_line(editor_page) -> None:
    editor_page.fill("#editor", MANIFEST)
    editor_page.evaluate(
        "editor.setProblems([{line: 7, message: 'replicas must be at most 1'}, {line: null, message: 'x'}])"
    )
    gutter = editor_page.locator(".editor-gutter span.error")
    assert gutter.count() == 1 and gutter.get_attribute("data-line") == "7"
    assert "replicas must be at most 1" in gutter.get_attribute("title")
    note = editor_page.locator(".editor-marks .note")
    assert note.inner_text().endswith("replicas must be at most 1")
    # The bar is drawn over line 7 of the text: same vertical position as the 7th gutter number.
    bar_box = editor_page.locator(".editor-marks .bar").bounding_box()
    line_box = editor_page.locator('.editor-gutter span[data-line="7"]').bounding_box()
    assert abs(bar_box["y"] - line_box["y"]) < 1

    editor_page.evaluate("editor.goToLine(7)")
    selected = editor_page.evaluate(
        "(t => t.value.slice(t.selectionStart, t.selectionEnd))(document.getElementById('editor'))"
    )
    assert selected == "  replicas: 2"

    editor_page.evaluate("editor.setProblems([])")
    assert editor_page.locator(".editor-gutter span.error").count() == 0
    assert editor_page.locator(".editor-marks .note").count() == 0


def test_highlight_and_gutter_follow_scrolling(editor_page) -> None:
    long_text = "\n".join(f"key{i}: value-{i}" for i in range(200))
    editor_page.fill("#editor", long_text)
    editor_page.evaluate("document.getElementById('editor').scrollTop = 1000")
    editor_page.wait_for_function(
        "document.querySelector('.editor-highlight').scrollTop === document.getElementById('editor').scrollTop"
    )
    transform = editor_page.evaluate("document.querySelector('.editor-gutter-lines').style.transform")
    assert transform == "translateY(-1000px)"
