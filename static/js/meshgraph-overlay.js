/* Marks drawn over the mesh graph: a padlock on every edge that carries mTLS traffic, and node badges
 * (GW gateway, VS virtual service, FI fault injection, MS missing sidecar) as in Kiali's legend.
 *
 * Cytoscape draws shapes and text, and a lock drawn as text would need an emoji font (headless Chromium
 * and many Linux desktops have none), so the marks are small vector paths instead: an SVG layer over the
 * canvas that follows pan and zoom with one transform, rebuilt only after elements changed. The same
 * marks are painted into the PNG export, so the picture shows what the screen shows.
 * Following Kiali's outcome on ambiguous locks (kiali#2374), the lock shows whenever some traffic on the
 * edge used mTLS; the side panel gives the share.
 *
 * Public interface: new MeshConsole.MeshOverlay(cy, svg, palette); paint(ctx) draws the marks in model
 * coordinates on a 2D canvas context whose transform the caller has set.
 */
(function () {
  "use strict";

  const NS = (window.MeshConsole = window.MeshConsole || {});
  const SVG = "http://www.w3.org/2000/svg";
  // A padlock centred on (0, 0): the shackle (stroked) and the body (filled), inside a circle of radius 7.
  const SHACKLE = "M -2.4 -0.6 V -2.6 A 2.4 2.4 0 0 1 2.4 -2.6 V -0.6";
  const BODY = "M -3.8 -0.9 H 3.8 V 4.2 H -3.8 Z";
  const LOCK_RADIUS = 7;
  const BADGE_HEIGHT = 12;
  const BADGE_WIDTH = 19;
  const BADGE_GAP = 3;

  class MeshOverlay {
    constructor(cy, svg, palette) {
      this.cy = cy;
      this.svg = svg;
      this.palette = palette;
      this.layer = document.createElementNS(SVG, "g");
      svg.append(this.layer);
      this.dirty = true;
      const changed = () => {
        this.dirty = true;
      };
      cy.on("add remove data position", changed);
      cy.on("viewport", () => this.follow());
      cy.on("render", () => this.draw());
    }

    /* Marks in model coordinates: locks at edge midpoints, badge rows just above each node. */
    marks() {
      const marks = [];
      this.cy.edges().forEach((edge) => {
        if (edge.data("mtls") > 0) marks.push({ kind: "lock", id: edge.id(), ...edge.midpoint() });
      });
      this.cy.nodes().forEach((node) => {
        const badges = node.data("badges") || [];
        const row = badges.length * BADGE_WIDTH + (badges.length - 1) * BADGE_GAP;
        const { x, y } = node.position();
        const top = y - node.height() / 2 - BADGE_HEIGHT / 2 - 4;
        badges.forEach((text, i) => {
          const left = x - row / 2 + i * (BADGE_WIDTH + BADGE_GAP);
          marks.push({ kind: "badge", id: node.id(), text, x: left + BADGE_WIDTH / 2, y: top });
        });
      });
      return marks;
    }

    follow() {
      const pan = this.cy.pan();
      this.layer.setAttribute("transform", `translate(${pan.x} ${pan.y}) scale(${this.cy.zoom()})`);
    }

    draw() {
      this.follow();
      if (!this.dirty) return;
      this.dirty = false;
      this.layer.replaceChildren(...this.marks().map((mark) => this.svgMark(mark)));
    }

    svgMark(mark) {
      const p = this.palette;
      const group = element("g", { transform: `translate(${mark.x} ${mark.y})`, "data-for": mark.id });
      if (mark.kind === "lock") {
        group.setAttribute("class", "mg-lock");
        group.append(
          element("circle", { r: LOCK_RADIUS, fill: p.surface, stroke: p.lock, "stroke-width": 0.8 }),
          element("path", { d: SHACKLE, fill: "none", stroke: p.lock, "stroke-width": 1.4 }),
          element("path", { d: BODY, fill: p.lock }),
        );
        const title = element("title", {});
        title.textContent = "mTLS";
        group.append(title);
        return group;
      }
      group.setAttribute("class", "mg-badge");
      group.setAttribute("data-badge", mark.text);
      const text = element("text", {
        "text-anchor": "middle",
        "dominant-baseline": "central",
        "font-size": 8,
        "font-weight": 700,
        "font-family": p.font,
        fill: p["badge-text"],
      });
      text.textContent = mark.text;
      group.append(
        element("rect", {
          x: -BADGE_WIDTH / 2,
          y: -BADGE_HEIGHT / 2,
          width: BADGE_WIDTH,
          height: BADGE_HEIGHT,
          rx: 3,
          fill: p[`badge-${NS.meshElements.badgeColour(mark.text)}`],
        }),
        text,
      );
      return group;
    }

    paint(ctx) {
      const p = this.palette;
      for (const mark of this.marks()) {
        ctx.save();
        ctx.translate(mark.x, mark.y);
        if (mark.kind === "lock") {
          ctx.beginPath();
          ctx.arc(0, 0, LOCK_RADIUS, 0, 2 * Math.PI);
          ctx.fillStyle = p.surface;
          ctx.fill();
          ctx.lineWidth = 0.8;
          ctx.strokeStyle = p.lock;
          ctx.stroke();
          ctx.lineWidth = 1.4;
          ctx.stroke(new Path2D(SHACKLE));
          ctx.fillStyle = p.lock;
          ctx.fill(new Path2D(BODY));
        } else {
          ctx.beginPath();
          ctx.roundRect(-BADGE_WIDTH / 2, -BADGE_HEIGHT / 2, BADGE_WIDTH, BADGE_HEIGHT, 3);
          ctx.fillStyle = p[`badge-${NS.meshElements.badgeColour(mark.text)}`];
          ctx.fill();
          ctx.fillStyle = p["badge-text"];
          ctx.font = `700 8px ${p.font}`;
          ctx.textAlign = "center";
          ctx.textBaseline = "middle";
          ctx.fillText(mark.text, 0, 0.5);
        }
        ctx.restore();
      }
    }
  }

  function element(name, attributes) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
    return node;
  }

  NS.MeshOverlay = MeshOverlay;
})();
