// Fits a plotly figure's long texts to the room they get in the browser (no imports, no exports:
// ui/live_plot.py prepends this file to its component script; figures/export.py runs it in
// exported HTML pages).
//
// Only the browser knows how wide a figure is (a third of a 1280 px laptop, half of a 1600 px
// projector, a whole exported page), so titles, axis titles, panel titles and legend entries
// are wrapped here, at word boundaries, to the width they are given; plotly's own automargin
// then makes room for the extra lines of axis titles, and the top margin is set here to what the
// title, subtitle and panel titles take as drawn. The figure JSON from Python stays unwrapped.

const FIT_PAD = 12; // px kept free at a text's ends
const FIT_MIN = 60; // never wrap to less than this (a word per line helps nobody)
const FIT_LEGEND_SYMBOL = 48; // a legend entry's symbol and gaps before its text
const FIT_RIGHT_LEGEND = 0.34; // a vertical legend may take this share of the width
const FIT_TITLE_GAP = 10; // px between the title block and what is below it (style.TITLE_GAP_PX)
const FIT_PANEL_GAP = 6; // px under the panel titles, above the plot area
let fitCanvas = null;

function fitTextWidth(text, font) {
  fitCanvas ??= document.createElement("canvas").getContext("2d");
  const weight = font?.weight ?? "normal";
  fitCanvas.font = `${weight} ${font?.size ?? 12}px ${font?.family ?? "sans-serif"}`;
  return fitCanvas.measureText(text.replace(/<[^>]*>/g, "")).width;
}

// Greedy word wrap into lines of at most maxWidth px; explicit <br> are kept, words never
// split. Text with other markup is left alone (a tag must not be cut in two).
function fitWrap(text, font, maxWidth) {
  if (typeof text !== "string" || !text) return text;
  // "s = 16" stays on one line: no break next to "=".
  const plain = text.replace(/<br\s*\/?>/gi, "\n").replace(/ = /g, "\u00a0=\u00a0");
  if (plain.includes("<")) return text;
  const limit = Math.max(maxWidth, FIT_MIN);
  return plain
    .split("\n")
    .map((paragraph) => {
      const lines = [];
      let line = "";
      for (const word of paragraph.split(" ")) {
        const candidate = line ? `${line} ${word}` : word;
        if (line && fitTextWidth(candidate, font) > limit) {
          lines.push(line);
          line = word;
        } else {
          line = candidate;
        }
      }
      lines.push(line);
      return lines.join("<br>");
    })
    .join("<br>")
    .replace(/\u00a0/g, " ");
}

function fitGet(obj, path) {
  return path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
}

// The width each text may take, read from the drawn figure (margins after automargin).
function fitRooms(gd, source) {
  const fl = gd._fullLayout;
  const size = fl._size;
  const rooms = [];
  const titleX = fl.title?.xref === "paper" ? size.l + (fl.title.x ?? 0.5) * size.w : (fl.title?.x ?? 0.5) * fl.width;
  const anchor = fl.title?.xanchor;
  const titleRoom =
    anchor === "left" ? fl.width - titleX : anchor === "right" ? titleX : 2 * Math.min(titleX, fl.width - titleX);
  rooms.push(["title.text", titleRoom - FIT_PAD, fl.title?.font]);
  rooms.push(["title.subtitle.text", titleRoom - FIT_PAD, fl.title?.subtitle?.font]);
  for (const name of Object.keys(fl)) {
    if (!/^[xy]axis\d*$/.test(name) || !fl[name]?._length) continue;
    // The axis's whole domain, not its drawn length: an equal-aspect axis is drawn shorter,
    // and wrapping to that would take height, shorten it further and spiral.
    const [lo, hi] = fitGet(source.layout, `${name}.domain`) ?? [0, 1];
    const span = (hi - lo) * (name[0] === "x" ? size.w : size.h);
    rooms.push([`${name}.title.text`, Math.max(span, fl[name]._length) - FIT_PAD, fl[name].title?.font]);
  }
  (fl.annotations ?? []).forEach((ann, k) => {
    if (ann.xref !== "paper" || ann.showarrow) return;
    // A panel title: the panel whose x domain holds it; else the whole plot width.
    const panel = Object.keys(fl)
      .filter((n) => /^xaxis\d*$/.test(n) && fl[n].domain)
      .map((n) => fl[n].domain)
      .find(([lo, hi]) => ann.x >= lo - 1e-6 && ann.x <= hi + 1e-6);
    const room = panel ? (panel[1] - panel[0]) * size.w + 0.5 * FIT_PAD : size.w;
    rooms.push([`annotations.${k}.text`, room - FIT_PAD, ann.font]);
  });
  const legend = fl.legend ?? {};
  // A horizontal legend starts at its x; its title, if any, takes the start of each row.
  const left = legend.xref === "container" ? (legend.x ?? 0) * fl.width : size.l + (legend.x ?? 0) * size.w;
  const titleBox = gd.querySelector(".legend .legendtitletext")?.getBoundingClientRect();
  const besideTitle = titleBox && !String(legend.title?.side ?? "left").startsWith("top");
  const legendTitle = besideTitle ? titleBox.width + FIT_PAD : 0;
  const legendRoom =
    legend.orientation === "h"
      ? fl.width - left - legendTitle - FIT_LEGEND_SYMBOL - FIT_PAD
      : FIT_RIGHT_LEGEND * fl.width - FIT_LEGEND_SYMBOL;
  return { rooms, legendRoom, legendFont: legend.font };
}

// Panel titles (annotations above the plot area): the tallest of them as drawn.
function fitPanelTitleRoom(gd) {
  let tallest = 0;
  (gd._fullLayout.annotations ?? []).forEach((ann, k) => {
    if (ann.yref !== "paper" || ann.y < 1 || ann.showarrow) return;
    const el = gd.querySelector(`.annotation[data-index="${k}"]`);
    if (el) tallest = Math.max(tallest, el.getBoundingClientRect().height);
  });
  return tallest;
}

// The drawn title block (title and subtitle) hangs from the figure's top edge; plotly.js lifts
// a wrapped title by its extra lines (out of the figure), so its y is corrected by what is
// measured. Returns the title's y (null: nothing to correct) and the top margin the block and
// the panel titles under it take (null for a figure with neither: its margin is left alone).
function fitTitleBlock(gd) {
  const fl = gd._fullLayout;
  const top = gd.getBoundingClientRect().top;
  let first = Infinity;
  let bottom = 0;
  for (const el of gd.querySelectorAll(".g-gtitle text")) {
    const r = el.getBoundingClientRect();
    if (!(r.height > 0) || !(el.textContent ?? "").trim()) continue;
    first = Math.min(first, r.top - top);
    bottom = Math.max(bottom, r.bottom - top);
  }
  let y = null;
  const title = fl.title ?? {};
  if (bottom && title.yref === "container" && title.yanchor === "top" && fl.height > 0) {
    let lift = (title.pad?.t ?? 0) - first; // > 0: the block starts above where it should
    if (Math.abs(lift) <= 0.5) lift = 0;
    y = Math.round(((title.y ?? 1) - lift / fl.height) * 1e4) / 1e4; // kept in the plan
    bottom += lift;
  }
  const panels = fitPanelTitleRoom(gd);
  if (!bottom && !panels) return { y, margin: null };
  const below = panels ? panels + FIT_PANEL_GAP : 0;
  let margin = Math.max(bottom, FIT_PANEL_GAP) + FIT_TITLE_GAP + below;
  // A title left at y "auto" is centred in the top margin (plotly.js puts it at half the
  // margin), so it moves down half of what the margin grows: the margin it needs is where
  // the two meet, reached in one pass (fitting to the measured bottom crept up a pixel a pass).
  const drawnTop = fl._size?.t ?? 0; // the top margin as drawn, after automargin
  if (bottom && title.y === "auto" && drawnTop > 0) margin = 2 * margin - drawnTop;
  return { y, margin: Math.ceil(margin) };
}

// What the texts should read for these rooms: {layout: {path: [original, fitted]},
// names: [[original, fitted]]}; keyed by the original, so a plan is never applied to a text
// that has changed since.
function fitPlan(source, gd) {
  const { rooms, legendRoom, legendFont } = fitRooms(gd, source);
  const layout = {};
  const roomOf = {};
  for (const [path, room, font] of rooms) {
    roomOf[path] = [room, font];
    const text = fitGet(source.layout, path);
    if (typeof text === "string" && text) layout[path] = [text, fitWrap(text, font, room)];
  }
  const block = fitTitleBlock(gd);
  const sourceTop = fitGet(source.layout, "margin.t");
  if (block.margin != null && typeof sourceTop === "number") {
    layout["margin.t"] = [sourceTop, block.margin];
  }
  const sourceY = fitGet(source.layout, "title.y");
  if (block.y != null && typeof sourceY === "number") layout["title.y"] = [sourceY, block.y];
  const names = source.names.map((name) => [name, fitWrap(name, legendFont, legendRoom)]);
  return { layout, names, rooms: roomOf, legend: [legendRoom, legendFont] };
}

// The figure's original texts: what fitPlan wraps (never the wrapped ones).
function fitSource(layout, data) {
  return { layout: JSON.parse(JSON.stringify(layout ?? {})), names: (data ?? []).map((t) => t.name) };
}

function fitSet(obj, path, value) {
  const keys = path.split(".");
  const last = keys.pop();
  let parent = obj;
  for (const k of keys) {
    if (parent[k] == null) parent[k] = {};
    if (typeof parent[k] !== "object") return; // a plain value on the way: leave it be
    parent = parent[k];
  }
  parent[last] = value;
}

// Writes a previous plan into a figure about to be drawn: its fitted texts where the texts are
// unchanged, and a changed text (a title naming the new m) wrapped to the room its place had.
// A live update then usually needs no second pass: each pass redraws the whole plot, and a
// slider move while playing took three (half a second for the Lab's circle).
function fitApply(plan, layout, data) {
  if (!plan) return;
  for (const [path, [original, fitted]] of Object.entries(plan.layout)) {
    if ((fitGet(layout, path) ?? 0) === original) fitSet(layout, path, fitted);
  }
  for (const [path, [room, font]] of Object.entries(plan.rooms ?? {})) {
    const text = fitGet(layout, path);
    if (typeof text === "string" && text && text !== plan.layout[path]?.[1]) {
      fitSet(layout, path, fitWrap(text, font, room));
    }
  }
  const [legendRoom, legendFont] = plan.legend ?? [];
  (data ?? []).forEach((t, i) => {
    const [original, fitted] = plan.names[i] ?? [];
    if (t.name === original && fitted != null) t.name = fitted;
    else if (typeof t.name === "string" && legendRoom != null) {
      t.name = fitWrap(t.name, legendFont, legendRoom); // a legend entry that changed
    }
  });
}

// What a fit of the drawn figure depends on, read without making the browser lay out the page
// again: the original texts, the figure's size, and its margins and axis lengths as drawn. An
// update that leaves this unchanged (a live tick: new points, the same titles) keeps the
// previous fit; measuring it again took two forced layouts an update (11 ms of a lesson
// tab's 110 ms of script).
function fitSignature(gd, source) {
  const fl = gd._fullLayout;
  if (!fl?._size) return null;
  const parts = [fitGet(source.layout, "title.text"), fitGet(source.layout, "title.subtitle.text")];
  for (const name of Object.keys(fl)) {
    if (/^[xy]axis\d*$/.test(name)) parts.push(name, fl[name]?._length, fitGet(source.layout, `${name}.title.text`));
  }
  for (const ann of source.layout.annotations ?? []) parts.push(ann?.text, ann?.x, ann?.y);
  return JSON.stringify([parts, source.names, fl.width, fl.height, fl._size]);
}

// Re-wraps the drawn figure `gd` until its texts fit (automargin moves the plot area, so a
// second pass may wrap once more). Returns the plan, to apply before the next update.
async function fitFigure(gd, source) {
  let plan = null;
  for (let pass = 0; pass < 3 && gd._fullLayout; pass += 1) {
    plan = fitPlan(source, gd);
    const layoutUpdate = {};
    for (const [path, [, fitted]] of Object.entries(plan.layout)) {
      if (fitGet(gd.layout, path) !== fitted) layoutUpdate[path] = fitted;
    }
    const changed = [];
    plan.names.forEach(([, fitted], i) => {
      if (gd.data[i] && typeof fitted === "string" && gd.data[i].name !== fitted) changed.push(i);
    });
    if (!Object.keys(layoutUpdate).length && !changed.length) break;
    const traceUpdate = changed.length ? { name: changed.map((i) => plan.names[i][1]) } : {};
    await window.Plotly.update(gd, traceUpdate, layoutUpdate, changed.length ? changed : undefined);
  }
  return plan;
}
