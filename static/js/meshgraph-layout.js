/* Left-to-right layered placement for the mesh graph that never moves a node already settled.
 *
 * Kiali's users complain that its graph jumps on refresh (every change re-runs the layout) and that a new
 * node can land on top of an old one (kiali#1342, #7835). Here dagre lays out the whole current graph, but
 * only nodes without a fixed position take theirs from it: a new node keeps its place relative to its
 * already-placed neighbours in that ideal layout (the mean offset between their ideal and actual
 * positions), then slides up or down its column to the nearest free slot. Nodes are placed one at a time,
 * those with the most placed neighbours first, so a chain of new nodes grows from the part already drawn.
 * A node may also come with a preferred spot (where it was before it left the graph, or before a reload):
 * it gets that spot unless something else took it meanwhile, then the nearest free one.
 *
 * Public interface (MeshConsole.meshLayout):
 *   layered(ids, edges) -> Map(id -> {x, y})                  the full layout ("Re-layout")
 *   placeNew(ids, edges, fixed, preferred) -> Map(id -> {x, y})  positions for the ids not in `fixed`
 * where ids is [string], edges is [{source, target}], fixed and preferred are Map(id -> {x, y}).
 */
(function () {
  "use strict";

  const NS = (window.MeshConsole = window.MeshConsole || {});
  // Room for one node: its shape plus the name and version lines under it, and the badges above it.
  const NODE_WIDTH = 90;
  const NODE_HEIGHT = 84;
  // Between ranks sits the edge label ("12.5 rps | 0.4% | 8 ms"), so ranks are far apart.
  const RANK_GAP = 150;
  const NODE_GAP = 30;
  const MAX_SLIDES = 60;

  function layered(ids, edges) {
    const graph = new dagre.graphlib.Graph();
    graph.setGraph({ rankdir: "LR", ranksep: RANK_GAP, nodesep: NODE_GAP, marginx: 20, marginy: 20 });
    graph.setDefaultEdgeLabel(() => ({}));
    for (const id of ids) graph.setNode(id, { width: NODE_WIDTH, height: NODE_HEIGHT });
    for (const { source, target } of edges) {
      if (source !== target && graph.hasNode(source) && graph.hasNode(target)) graph.setEdge(source, target);
    }
    dagre.layout(graph);
    return new Map(ids.map((id) => [id, { x: graph.node(id).x, y: graph.node(id).y }]));
  }

  function placeNew(ids, edges, fixed, preferred) {
    const placed = new Map(ids.filter((id) => fixed.has(id)).map((id) => [id, fixed.get(id)]));
    const fresh = new Map();
    for (const id of ids) {
      if (placed.has(id) || !preferred.has(id)) continue;
      const spot = freeSpot(preferred.get(id), [...placed.values()]);
      placed.set(id, spot);
      fresh.set(id, spot);
    }
    const pending = new Set(ids.filter((id) => !placed.has(id)));
    if (!pending.size) return fresh;
    const ideal = layered(ids, edges);
    if (!placed.size) return ideal;

    const neighbours = new Map(ids.map((id) => [id, new Set()]));
    for (const { source, target } of edges) {
      if (source === target || !neighbours.has(source) || !neighbours.has(target)) continue;
      neighbours.get(source).add(target);
      neighbours.get(target).add(source);
    }
    while (pending.size) {
      const id = nextToPlace(pending, neighbours, placed, ideal);
      pending.delete(id);
      const anchors = [...neighbours.get(id)].filter((other) => placed.has(other));
      const shift = meanShift(anchors.length ? anchors : [...placed.keys()], placed, ideal);
      const wanted = { x: ideal.get(id).x + shift.x, y: ideal.get(id).y + shift.y };
      const spot = freeSpot(wanted, [...placed.values()]);
      placed.set(id, spot);
      fresh.set(id, spot);
    }
    return fresh;
  }

  /* The pending node with the most placed neighbours; ties go to the leftmost, then topmost, ideal spot. */
  function nextToPlace(pending, neighbours, placed, ideal) {
    let best = null;
    let bestKey = null;
    for (const id of pending) {
      const linked = [...neighbours.get(id)].filter((other) => placed.has(other)).length;
      const key = [-linked, ideal.get(id).x, ideal.get(id).y];
      if (best === null || compareKeys(key, bestKey) < 0) {
        best = id;
        bestKey = key;
      }
    }
    return best;
  }

  function compareKeys(a, b) {
    for (let i = 0; i < a.length; i += 1) if (a[i] !== b[i]) return a[i] - b[i];
    return 0;
  }

  function meanShift(anchors, placed, ideal) {
    let x = 0;
    let y = 0;
    for (const id of anchors) {
      x += placed.get(id).x - ideal.get(id).x;
      y += placed.get(id).y - ideal.get(id).y;
    }
    return { x: x / anchors.length, y: y / anchors.length };
  }

  /* `wanted` if no placed node is within one node's room of it, else the nearest free slot in its column. */
  function freeSpot(wanted, taken) {
    const clashes = (spot) =>
      taken.some((p) => Math.abs(p.x - spot.x) < NODE_WIDTH && Math.abs(p.y - spot.y) < NODE_HEIGHT);
    for (let slide = 0; slide <= MAX_SLIDES; slide += 1) {
      for (const sign of slide ? [1, -1] : [1]) {
        const spot = { x: wanted.x, y: wanted.y + sign * slide * (NODE_HEIGHT / 2) };
        if (!clashes(spot)) return spot;
      }
    }
    return wanted; // a column this full is beyond what a lab namespace holds; overlap beats failing
  }

  NS.meshLayout = { layered, placeNew };
})();
