/* A small YAML editor: a plain <textarea> laid over a highlighted copy of its text.
 *
 * The textarea stays the real input (native undo, selection, IME, screen readers, form filling);
 * its text is transparent and a <pre> behind it shows the same text coloured. A gutter shows line
 * numbers and marks lines with problems (from the server's validation), so errors are shown where
 * they are. Without JavaScript the page keeps a plain, working textarea.
 *
 * Public interface: new MeshConsole.Editor(textarea, {onChange}) with getValue(), setValue(text),
 * setProblems([{line, message}]), goToLine(n), focus(); and MeshConsole.highlightYaml(text).
 */
(function () {
  "use strict";

  const NS = (window.MeshConsole = window.MeshConsole || {});
  const INDENT = "  ";

  // --- Highlighting ------------------------------------------------------------------------------

  const NUMBER = /^[-+]?(?:\d[\d_]*(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+|0x[\da-fA-F]+|0o[0-7]+|\.inf|\.nan)$/i;
  const LITERAL = /^(?:true|false|yes|no|on|off|null|~)$/i;
  const QUOTED_KEY = /^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*')(\s*)(:)(?=\s|$)/;
  const PLAIN_KEY = /^([^\s#'"[\]{},&*!|>%@`-][^#]*?|-[^\s#][^#]*?)(\s*)(:)(?=\s|$)/;
  const FLOW_KEY = /^([^\s#'"[\]{},&*!|>%@`][^#,[\]{}]*?)(:)(?=\s)/;

  function escapeHtml(text) {
    return text.replace(/[&<>]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" })[c]);
  }

  function scalarClass(word) {
    if (NUMBER.test(word)) return "num";
    if (LITERAL.test(word)) return "lit";
    return "str";
  }

  /* Split one line into [class, text] tokens. `state` carries what spans lines: an open block
   * scalar (`key: |`, content is every following line indented deeper than the key) and the
   * depth of open flow collections. */
  function tokenizeLine(line, state) {
    const tokens = [];
    const push = (cls, text) => text && tokens.push([cls, text]);
    const indent = line.length - line.trimStart().length;

    if (state.block !== null) {
      if (!line.trim() || indent > state.block) {
        push("str", line);
        return tokens;
      }
      state.block = null;
    }
    let pos = 0;
    const docMarker = /^(---|\.\.\.)(?=\s|$)/.exec(line);
    if (docMarker) {
      push("doc", docMarker[1]);
      pos = docMarker[1].length;
      state.flow = 0;
    } else if (/^%/.test(line)) {
      push("meta", line);
      return tokens;
    }
    // Indentation and sequence dashes; the node's column decides where a block scalar ends.
    let nodeColumn = indent;
    let match = /^\s*/.exec(line.slice(pos));
    push(null, match[0]);
    pos += match[0].length;
    if (state.flow === 0) {
      while ((match = /^-(?=\s|$)(\s*)/.exec(line.slice(pos)))) {
        nodeColumn = pos;
        push("punct", "-");
        push(null, match[1]);
        pos += 1 + match[1].length;
      }
      match = QUOTED_KEY.exec(line.slice(pos)) || PLAIN_KEY.exec(line.slice(pos));
      if (match && line[pos] !== "#") {
        nodeColumn = pos;
        push("key", match[1]);
        push(null, match[2]);
        push("punct", match[3]);
        pos += match[0].length;
      }
    }
    tokenizeValue(line, pos, state, nodeColumn, push);
    return tokens;
  }

  function tokenizeValue(line, start, state, nodeColumn, push) {
    let pos = start;
    let first = true; // a block scalar indicator may only open the value
    while (pos < line.length) {
      const rest = line.slice(pos);
      const ch = rest[0];
      let m;
      if ((m = /^\s+/.exec(rest))) {
        push(null, m[0]);
      } else if (ch === "#") {
        push("com", rest);
        return;
      } else if (ch === '"') {
        m = /^"(?:[^"\\]|\\.)*"?/.exec(rest);
        push("str", m[0]);
      } else if (ch === "'") {
        m = /^'(?:[^']|'')*'?/.exec(rest);
        push("str", m[0]);
      } else if ("[{".includes(ch)) {
        state.flow += 1;
        m = [ch];
        push("punct", ch);
      } else if ("]}".includes(ch)) {
        state.flow = Math.max(0, state.flow - 1);
        m = [ch];
        push("punct", ch);
      } else if (ch === "," && state.flow > 0) {
        m = [ch];
        push("punct", ch);
      } else if ((m = /^[&*!][^\s,[\]{}]*/.exec(rest))) {
        push("meta", m[0]);
      } else if (first && state.flow === 0 && (m = /^[|>][-+0-9]*(?=\s|$)/.exec(rest))) {
        push("punct", m[0]);
        state.block = nodeColumn;
      } else if (state.flow > 0 && (m = FLOW_KEY.exec(rest))) {
        push("key", m[1]);
        push("punct", m[2]);
      } else {
        // A plain scalar: in block context it runs to a comment; in flow context to an indicator.
        m = state.flow > 0 ? /^[^,[\]{}#]+?(?=\s*(?:[,[\]{}]|\s#|$))/.exec(rest) : /^.+?(?=\s+#|\s*$)/.exec(rest);
        if (!m) m = [rest];
        push(scalarClass(m[0].trim()), m[0]);
      }
      if (ch.trim()) first = false;
      pos += m[0].length;
    }
  }

  function highlightYaml(text) {
    const state = { block: null, flow: 0 };
    return text
      .split("\n")
      .map((line) =>
        tokenizeLine(line, state)
          .map(([cls, part]) => (cls ? `<span class="tok-${cls}">${escapeHtml(part)}</span>` : escapeHtml(part)))
          .join(""),
      )
      .join("\n");
  }

  // --- The editor --------------------------------------------------------------------------------

  function el(tag, className, attrs) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    return node;
  }

  class Editor {
    constructor(textarea, options = {}) {
      this.textarea = textarea;
      this.onChange = options.onChange || (() => {});
      this.problems = new Map(); // line number -> messages
      this.tabReleased = false;
      this.lineCount = 0;
      this.frameRequested = false;

      this.frame = el("div", "editor");
      const gutter = el("div", "editor-gutter", { "aria-hidden": "true" });
      this.gutterLines = el("div", "editor-gutter-lines");
      gutter.append(this.gutterLines);
      const code = el("div", "editor-code");
      // Problem marks: full-width bars (follow vertical scrolling) and notes after the line's text
      // (follow both directions).
      const marks = el("div", "editor-marks", { "aria-hidden": "true" });
      this.marks = el("div");
      this.notes = el("div");
      marks.append(this.marks, this.notes);
      this.pre = el("pre", "editor-highlight", { "aria-hidden": "true" });
      this.code = el("code");
      this.pre.append(this.code);
      textarea.replaceWith(this.frame);
      code.append(marks, this.pre, textarea);
      this.frame.append(gutter, code);
      Object.assign(textarea, { spellcheck: false, wrap: "off" });
      textarea.setAttribute("autocapitalize", "off");
      textarea.setAttribute("autocomplete", "off");
      textarea.setAttribute("autocorrect", "off");

      textarea.addEventListener("input", () => {
        this.render();
        this.onChange(this.getValue());
      });
      textarea.addEventListener("scroll", () => this.syncScroll());
      textarea.addEventListener("keydown", (event) => this.onKeyDown(event));
      textarea.addEventListener("blur", () => {
        this.tabReleased = false;
      });
      this.render();
    }

    getValue() {
      return this.textarea.value;
    }

    /* Replace the whole text as one edit, so that Ctrl-Z brings the previous text back. */
    setValue(text) {
      const ta = this.textarea;
      ta.focus();
      ta.setSelectionRange(0, ta.value.length);
      if (!document.execCommand("insertText", false, text) || ta.value !== text) {
        ta.value = text;
        ta.dispatchEvent(new Event("input", { bubbles: true }));
      }
      ta.setSelectionRange(0, 0);
      ta.scrollTop = 0;
      this.syncScroll();
    }

    focus() {
      this.textarea.focus();
    }

    /* Mark lines with problems; `problems` is a list of {line, message} (line is 1-based or null). */
    setProblems(problems) {
      this.problems = new Map();
      for (const { line, message } of problems || []) {
        if (!Number.isInteger(line) || line < 1) continue;
        this.problems.set(line, [...(this.problems.get(line) || []), message]);
      }
      this.renderGutter(true);
      this.renderMarks();
    }

    goToLine(line) {
      const ta = this.textarea;
      const lines = ta.value.split("\n");
      const target = Math.min(Math.max(line, 1), lines.length);
      const offset = lines.slice(0, target - 1).reduce((sum, text) => sum + text.length + 1, 0);
      ta.focus();
      ta.setSelectionRange(offset, offset + lines[target - 1].length);
      ta.scrollTop = Math.max(0, (target - 1) * this.lineHeight() - ta.clientHeight / 3);
      this.syncScroll();
    }

    lineHeight() {
      return parseFloat(getComputedStyle(this.textarea).lineHeight) || 20;
    }

    /* Redraw before the next paint: the frame that shows the new text shows its colours too, and a
     * burst of input events (a paste, a test filling the field) costs one redraw, not one each. */
    render() {
      if (this.frameRequested) return;
      this.frameRequested = true;
      requestAnimationFrame(() => {
        this.frameRequested = false;
        // A trailing newline gives the last (possibly empty) line its height, as in the textarea.
        this.code.innerHTML = highlightYaml(this.textarea.value) + "\n";
        this.renderGutter(false);
        if (this.problems.size) this.renderMarks(); // notes sit after the text of their line
        this.syncScroll();
      });
    }

    renderGutter(force) {
      const count = this.textarea.value.split("\n").length;
      if (count === this.lineCount && !force) return;
      this.lineCount = count;
      const fragment = document.createDocumentFragment();
      for (let n = 1; n <= count; n++) {
        const span = el("span", null, { "data-line": String(n) });
        span.textContent = String(n);
        if (this.problems.has(n)) {
          span.className = "error";
          span.title = this.problems.get(n).join("\n");
        }
        fragment.append(span);
      }
      this.gutterLines.replaceChildren(fragment);
    }

    renderMarks() {
      const style = getComputedStyle(this.textarea);
      const top = parseFloat(style.paddingTop) || 0;
      const height = this.lineHeight();
      const lines = this.textarea.value.split("\n");
      const bars = [];
      const notes = [];
      for (const [line, messages] of this.problems) {
        const y = `${top + (line - 1) * height}px`;
        const bar = el("span", "bar", { "data-line": String(line) });
        bar.style.top = y;
        const note = el("span", "note", { "data-line": String(line) });
        note.textContent = `◂ ${messages.join("; ")}`;
        note.style.top = y;
        note.style.left = `calc(${style.paddingLeft} + ${(lines[line - 1] || "").length + 2}ch)`;
        bars.push(bar);
        notes.push(note);
      }
      this.marks.replaceChildren(...bars);
      this.notes.replaceChildren(...notes);
    }

    syncScroll() {
      const { scrollTop, scrollLeft } = this.textarea;
      this.pre.scrollTop = scrollTop;
      this.pre.scrollLeft = scrollLeft;
      this.gutterLines.style.transform = `translateY(${-scrollTop}px)`;
      this.marks.style.transform = `translateY(${-scrollTop}px)`;
      this.notes.style.transform = `translate(${-scrollLeft}px, ${-scrollTop}px)`;
    }

    // --- Keys: Tab indents (Esc then Tab leaves the editor), Enter keeps the indentation. --------

    onKeyDown(event) {
      if (event.key === "Escape") {
        this.tabReleased = true;
        return;
      }
      if (event.key === "Tab" && !this.tabReleased && !event.ctrlKey && !event.altKey && !event.metaKey) {
        event.preventDefault();
        if (event.shiftKey) this.reindent(-1);
        else if (this.textarea.value.slice(this.textarea.selectionStart, this.textarea.selectionEnd).includes("\n")) {
          this.reindent(1);
        } else this.insertSpaces();
      } else if (event.key === "Enter" && !event.shiftKey && !event.ctrlKey && !event.metaKey && !event.isComposing) {
        event.preventDefault();
        this.newline();
      }
      if (event.key !== "Shift") this.tabReleased = false;
    }

    insert(text) {
      if (!document.execCommand("insertText", false, text)) {
        const ta = this.textarea;
        ta.setRangeText(text, ta.selectionStart, ta.selectionEnd, "end");
        ta.dispatchEvent(new Event("input", { bubbles: true }));
      }
    }

    insertSpaces() {
      const ta = this.textarea;
      const column = ta.selectionStart - (ta.value.lastIndexOf("\n", ta.selectionStart - 1) + 1);
      this.insert(" ".repeat(INDENT.length - (column % INDENT.length)));
    }

    newline() {
      const ta = this.textarea;
      const lineStart = ta.value.lastIndexOf("\n", ta.selectionStart - 1) + 1;
      const before = ta.value.slice(lineStart, ta.selectionStart);
      let indent = /^\s*/.exec(before)[0];
      const trimmed = before.replace(/\s+#.*$/, "").trimEnd();
      if (/(?::|[|>][-+0-9]*)$/.test(trimmed)) indent += INDENT;
      this.insert("\n" + indent);
    }

    /* Indent (+1) or dedent (-1) every line the selection touches, keeping them selected. */
    reindent(direction) {
      const ta = this.textarea;
      const value = ta.value;
      const start = value.lastIndexOf("\n", ta.selectionStart - 1) + 1;
      let end = value.indexOf("\n", ta.selectionEnd - (ta.selectionEnd > ta.selectionStart ? 1 : 0));
      if (end === -1) end = value.length;
      const lines = value.slice(start, end).split("\n");
      const changed = lines.map((line) => {
        if (direction > 0) return line ? INDENT + line : line;
        return line.replace(new RegExp(`^ {1,${INDENT.length}}`), "");
      });
      const replacement = changed.join("\n");
      if (replacement === lines.join("\n")) return;
      ta.setSelectionRange(start, end);
      this.insert(replacement);
      ta.setSelectionRange(start, start + replacement.length);
    }
  }

  NS.Editor = Editor;
  NS.highlightYaml = highlightYaml;
})();
