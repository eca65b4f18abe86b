// Frontend of ui.live_plot.live_plotly (an st.components.v2 component).
//
// Streamlit calls the default export on every rerun that changes the component's data, with
// the SAME parentElement as long as the element keeps its key. We keep one plot div in it and
// call Plotly.react on it, so plotly.js diffs the figure instead of rebuilding it; together
// with a constant layout.uirevision this keeps the user's 3-D camera and 2-D zoom
// (st.plotly_chart replaces its DOM node on every change: streamlit/streamlit#8882).
//
// The component is mounted with isolate_styles=False: plotly.js injects its stylesheet
// (modebar, hover labels) into document.head, which would not reach inside a shadow root.

// One store per page, shared by every instance and kept across reruns. `lane` holds the plots
// waiting for their turn to draw (see below); `drawing` is true while one of them draws.
const S = (window.__livePlotly ??= {
  loading: null,
  groups: new Map(),
  nextFree: 0,
  lane: [],
  drawing: false,
  laneTimer: 0,
});

// The page's plots take turns, one lane for all of them, and together keep the browser's main
// thread at most this busy with drawing: after a redraw of d ms, the next plot waits
// d * DRAW_IDLE_FACTOR ms. Without it a Lab of five plots on a 2-core laptop was drawing all the
// time (about 1.2 s per round), and a click on Pause, a slider move and Streamlit's own
// rendering queued behind the plots for seconds. A plot still shows the newest figure: waiting
// updates collapse into one, and a plot keeps its place in the lane while they do.
//
// The turns go in order of arrival (each plot racing for the next free moment with its own
// timer let one plot lose round after round: a slider move took seconds to reach the picture
// the user was looking at). An urgent update (the user changed something: a full rerun, not a
// live tick) goes ahead of every live tick and without the idle wait; a plot that shows nothing
// yet (just mounted) does not wait either.
const DRAW_IDLE_FACTOR = 1.0;

const GL3D_TYPES = new Set([
  "scatter3d",
  "surface",
  "mesh3d",
  "cone",
  "streamtube",
  "volume",
  "isosurface",
]);

// plotly.js (4.8 MB) is loaded once per page as a classic script from the local server;
// later updates and other instances reuse window.Plotly.
function loadPlotly(src) {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!S.loading) {
    S.loading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = src;
      script.async = true;
      script.onload = () =>
        window.Plotly
          ? resolve(window.Plotly)
          : reject(new Error(`${src} loaded but did not define window.Plotly`));
      script.onerror = () => {
        S.loading = null; // let the next update try again
        script.remove();
        reject(new Error(`could not load plotly.js from ${src}`));
      };
      document.head.appendChild(script);
    });
  }
  return S.loading;
}

// --- Streamlit's plotly theme ---------------------------------------------------------------
// Importing streamlit makes its "streamlit" template plotly's default; that template holds
// placeholder colours #000001..#000040 which st.plotly_chart's frontend swaps for the app
// theme's colours. We do the same with the theme's CSS variables (set by Streamlit on the
// component's wrapper), falling back to the values st.plotly_chart uses with theme=None.
const PLACEHOLDER = /#0000(0[1-9]|[1-3][0-9]|40)\b/g;
const FALLBACK = {
  categorical: "#636efa,#EF553B,#00cc96,#ab63fa,#FFA15A,#19d3f3,#FF6692,#B6E880,#FF97FF,#FECB52",
  sequential: "#0d0887,#46039f,#7201a8,#9c179e,#bd3786,#d8576b,#ed7953,#fb9f3a,#fdca26,#f0f921",
  diverging: "#8e0152,#c51b7d,#de77ae,#f1b6da,#fde0ef,#e6f5d0,#b8e186,#7fbc41,#4d9221,#276419",
};

function themeColors(el) {
  const css = getComputedStyle(el);
  const v = (name, fallback) => css.getPropertyValue(`--st-${name}`).trim() || fallback;
  const list = (name, fallback) => {
    const got = v(name, "").split(",").map((c) => c.trim()).filter(Boolean);
    return got.length >= 10 ? got : fallback.split(",");
  };
  const text = v("text-color", "#2a3f5f");
  const colors = [
    ...list("chart-categorical-colors", FALLBACK.categorical), // #000001-#000010
    ...list("chart-sequential-colors", FALLBACK.sequential), // #000011-#000020
    ...list("chart-diverging-colors", FALLBACK.diverging), // #000021-#000030
    "#000031", // unused by Streamlit
    v("green-color", "#3D9970"), // increasing
    v("red-color", "#FF4136"), // decreasing
    v("blue-color", "#4499FF"), // total
    v("gray-color", "#B2B5BE"),
    v("gray-color", "#2a3f5f"), // gray 70
    text, // gray 90
    v("background-color", "#EBF0F8"),
    v("border-color", "white"), // faded text
    v("secondary-background-color", "#C8D4E3"), // background mix
  ];
  return { colors, text, background: v("background-color", "#ffffff") };
}

// Python sends raw bytes (UTF-8 JSON) so the figure is not re-escaped inside another JSON.
function decode(data, el) {
  let text;
  if (data instanceof Uint8Array || data instanceof ArrayBuffer) {
    text = new TextDecoder().decode(data);
  } else if (typeof data === "string") {
    text = data;
  } else {
    return data;
  }
  // base64 typed arrays never contain "#", so this only touches colour strings.
  if (!text.includes("#0000")) return withFigText(JSON.parse(text), text, "");
  const theme = themeColors(el);
  const themed = text.replace(PLACEHOLDER, (m, n) => theme.colors[Number(n) - 1] ?? m);
  const msg = JSON.parse(themed);
  const layout = msg.fig?.layout;
  if (layout && text.includes('"colorway":["#000001"')) {
    // The figure uses Streamlit's template: match the page like st.plotly_chart does.
    layout.font = { color: theme.text, ...(layout.font ?? {}) };
    layout.paper_bgcolor ??= theme.background;
    layout.plot_bgcolor ??= theme.background;
  }
  return withFigText(msg, themed, `${theme.text} ${theme.background}`);
}

// The figure's JSON as sent (Python writes it last, after the options), with what the page's
// theme added: the same text is the same picture, and needs no redraw.
function withFigText(msg, text, themeNote) {
  const at = text.indexOf(',"fig":');
  if (at >= 0 && msg && typeof msg === "object") msg.figText = text.slice(at) + themeNote;
  return msg;
}

function is3d(fig) {
  return (
    fig.layout?.scene !== undefined || (fig.data ?? []).some((t) => GL3D_TYPES.has(t.type))
  );
}

function cloneCamera(camera) {
  return camera ? JSON.parse(JSON.stringify(camera)) : null;
}

// --- shared cameras -------------------------------------------------------------------------
// Plots with the same camera_key share one camera. A camera set with Plotly.relayout is not
// kept by uirevision on the next Plotly.react, so the group's camera is written into every
// member's layout before each react instead; it also restores the view when a plot remounts
// (for example after switching pages), because the store lives on window.

function joinGroup(div, name, fig) {
  const st = div.__lp;
  if (st.group && st.group.name !== name) {
    st.group.divs.delete(div);
    st.group = null;
  }
  if (!name) return;
  let group = S.groups.get(name);
  if (!group) {
    group = { name, camera: null, divs: new Set() };
    S.groups.set(name, group);
  }
  group.divs.add(div);
  st.group = group;
  const layout = fig.layout;
  // A plot whose uirevision changes asks for a fresh view: forget the shared camera.
  if (st.uirevision !== undefined && st.uirevision !== layout.uirevision) group.camera = null;
  st.uirevision = layout.uirevision;
  if (group.camera && is3d(fig)) {
    layout.scene = { ...(layout.scene ?? {}), camera: cloneCamera(group.camera) };
  }
}

function broadcastCamera(src, camera) {
  const group = src.__lp?.group;
  if (!group || !camera) return;
  group.camera = cloneCamera(camera);
  for (const other of group.divs) {
    const st = other.__lp;
    if (!st || !other.isConnected) {
      group.divs.delete(other); // unmounted without a cleanup call: drop it
      continue;
    }
    if (other === src || !other._fullLayout?.scene) continue;
    st.syncing = true; // its own relayout event must not echo back
    Promise.resolve(window.Plotly.relayout(other, { "scene.camera": cloneCamera(camera) }))
      .catch((err) => console.warn("live_plotly: camera sync failed", err))
      .finally(() => {
        st.syncing = false;
      });
  }
}

function bindPlotEvents(div) {
  const st = div.__lp;
  // End of a drag, scroll zoom or the modebar's "reset camera": gd.layout holds the result.
  div.on("plotly_relayout", (ev) => {
    if (st.syncing || !st.group || !ev) return;
    if (Object.keys(ev).some((k) => k.startsWith("scene.camera"))) {
      broadcastCamera(div, div.layout?.scene?.camera ?? ev["scene.camera"]);
    }
  });
  // During a drag: follow live, at most once per animation frame.
  div.on("plotly_relayouting", (ev) => {
    if (st.syncing || !st.group || !ev?.["scene.camera"]) return;
    st.liveCamera = ev["scene.camera"];
    if (st.liveFrame) return;
    st.liveFrame = requestAnimationFrame(() => {
      st.liveFrame = 0;
      broadcastCamera(div, st.liveCamera);
    });
  });
}

// --- updates --------------------------------------------------------------------------------

function showError(div, err) {
  console.error("live_plotly:", err);
  const st = div.__lp;
  if (!st.errorEl) {
    st.errorEl = document.createElement("pre");
    st.errorEl.className = "live-plotly-error";
    div.insertAdjacentElement("afterend", st.errorEl);
  }
  st.errorEl.textContent = `live_plotly: ${err?.message ?? err}`;
}

// Puts a plot with a new pending figure in the lane (or moves it up, when the figure is urgent
// and its place was among the live ticks), then lets the lane go on.
function enqueue(div, urgent) {
  const lane = S.lane;
  const at = lane.findIndex((entry) => entry.div === div);
  if (at >= 0) {
    if (!urgent || lane[at].urgent) return schedule();
    lane.splice(at, 1);
  }
  const entry = { div, urgent };
  if (urgent) {
    clearTimeout(S.laneTimer); // a live tick was waiting for the page's next free moment
    S.laneTimer = 0;
    const firstTick = lane.findIndex((e) => !e.urgent);
    lane.splice(firstTick < 0 ? lane.length : firstTick, 0, entry);
  } else {
    lane.push(entry);
  }
  schedule();
}

// Draws the first plot in the lane that can draw now: not one the user holds the mouse on (a
// drag is never interrupted by a redraw that could snap the camera back), not one busy fitting
// its texts. A live tick waits for the page's next free moment.
function schedule() {
  if (S.drawing || S.laneTimer) return;
  S.lane = S.lane.filter(({ div }) => div.isConnected && div.__lp?.pending);
  const at = S.lane.findIndex(({ div }) => !div.__lp.dragging && !div.__lp.busy);
  if (at < 0) return;
  const entry = S.lane[at];
  const wait = S.nextFree - performance.now();
  if (wait > 0 && !entry.urgent && entry.div.__lp.updates > 0) {
    S.laneTimer = setTimeout(() => {
      S.laneTimer = 0;
      schedule();
    }, wait);
    return;
  }
  S.lane.splice(at, 1);
  S.drawing = true;
  draw(entry.div).finally(() => {
    S.drawing = false;
    // Let the browser paint this plot (and handle input) before the next one draws: chained
    // at once, the five urgent redraws after a slider move were one long task of half a
    // second, and the first picture only showed at its end.
    requestAnimationFrame(() => setTimeout(schedule, 0));
  });
}

// Applies the plot's newest pending figure.
async function draw(div) {
  const st = div.__lp;
  const msg = st.pending;
  st.pending = null;
  st.shownText = msg.figText; // what the plot shows once this draw is done
  st.busy = true;
  let started = performance.now();
  try {
    const Plotly = await loadPlotly(msg.src);
    started = performance.now(); // loading plotly.js once is not drawing
    if (!div.isConnected || div.__lp !== st) return; // unmounted while loading
    const fig = msg.fig;
    fig.layout ??= {};
    // Constant unless the figure brings its own: plotly keeps GUI state (camera, zoom,
    // legend clicks) across react calls while uirevision is unchanged.
    if (fig.layout.uirevision === undefined) fig.layout.uirevision = "live_plotly";
    joinGroup(div, msg.camera_key, fig);
    // Long texts wrapped to this plot's width (fit_text.js): the last wrapping goes in with
    // the update, and a second pass only runs when a text or the width changed.
    st.fitSource = fitSource(fig.layout, fig.data);
    fitApply(st.fitPlan, fig.layout, fig.data);
    await Plotly.react(div, {
      data: fig.data ?? [],
      layout: fig.layout,
      frames: fig.frames,
      config: { responsive: true, displaylogo: false, ...(msg.config ?? {}) },
    });
    if (st.fitPlan && fitSignature(div, st.fitSource) === st.fitSignature) {
      div.dataset.fitsKept = String(Number(div.dataset.fitsKept ?? 0) + 1);
    } else {
      st.fitPlan = await fitFigure(div, st.fitSource);
      st.fitSignature = fitSignature(div, st.fitSource);
    }
    fitted(div);
    if (!st.bound) {
      bindPlotEvents(div);
      st.bound = true;
    }
    st.updates += 1;
    div.dataset.updates = String(st.updates);
    if (st.errorEl) {
      st.errorEl.remove();
      st.errorEl = null;
    }
  } catch (err) {
    st.shownText = undefined; // not drawn: the same figure must be tried again
    showError(div, err);
  } finally {
    st.busy = false;
    const now = performance.now();
    // (A figure that arrived meanwhile is already in the lane: it went in on arrival.)
    S.nextFree = Math.max(S.nextFree, now + (now - started) * DRAW_IDLE_FACTOR);
  }
}

// Counts finished text fits on the div (data-fits): a test can wait for the fit after a resize.
function fitted(div) {
  div.dataset.fits = String(Number(div.dataset.fits ?? 0) + 1);
}

// The plot changed size: wrap its texts to the new width (after any update being drawn).
async function refit(div) {
  const st = div.__lp;
  if (!st?.fitSource || !div._fullLayout) return;
  if (st.busy) {
    setTimeout(() => refit(div), 200);
    return;
  }
  st.busy = true;
  try {
    st.fitPlan = await fitFigure(div, st.fitSource);
    st.fitSignature = fitSignature(div, st.fitSource);
    fitted(div);
  } catch (err) {
    console.warn("live_plotly: text fit failed", err);
  } finally {
    st.busy = false;
    schedule();
  }
}

function purge(div) {
  const st = div.__lp;
  if (!st) return;
  div.__lp = null;
  st.group?.divs.delete(div);
  if (st.liveFrame) cancelAnimationFrame(st.liveFrame);
  S.lane = S.lane.filter((entry) => entry.div !== div);
  for (const [type, fn] of st.windowListeners) window.removeEventListener(type, fn, true);
  st.resizeObserver.disconnect();
  st.errorEl?.remove();
  window.Plotly?.purge(div); // frees the WebGL context and plotly's listeners
}

function initDiv(div) {
  const st = {
    pending: null,
    busy: false,
    dragging: false,
    press: 0,
    bound: false,
    seq: -Infinity,
    updates: 0,
    group: null,
    syncing: false,
    liveFrame: 0,
    liveCamera: null,
    errorEl: null,
    windowListeners: [],
    uirevision: undefined,
    resizeObserver: null,
    fitSource: null,
    fitPlan: null,
    fitSignature: null,
    shownText: undefined,
  };
  div.__lp = st;
  // plotly's `responsive` only follows window resizes; a plot that first rendered in a
  // hidden tab or a collapsed expander must also be resized when its box changes.
  st.resizeObserver = new ResizeObserver(() => {
    if (!div._fullLayout || st.dragging || div.offsetWidth === 0) return;
    Promise.resolve(window.Plotly?.Plots.resize(div))
      .then(() => refit(div))
      .catch(() => {});
  });
  st.resizeObserver.observe(div);
  div.addEventListener(
    "pointerdown",
    () => {
      st.dragging = true;
      st.press += 1;
    },
    true,
  );
  // Deferred by a task: plotly records a 3-D drag in its own "mouseup" listener on the
  // canvas, which runs after this window-level listener; a react before that would reset
  // the camera to the last recorded one.
  const release = () => {
    if (!st.dragging) return;
    const press = st.press;
    setTimeout(() => {
      if (st.press !== press) return; // a new press (double click) started meanwhile
      st.dragging = false;
      schedule();
    }, 0);
  };
  // A button released outside the window sends no pointerup: a move without buttons ends
  // the drag too, so updates can never stay blocked.
  const onMove = (e) => {
    if (e.buttons === 0) release();
  };
  for (const [type, fn] of [
    ["pointerup", release],
    ["mouseup", release],
    ["pointercancel", release],
    ["blur", release],
    ["pointermove", onMove],
  ]) {
    window.addEventListener(type, fn, true);
    st.windowListeners.push([type, fn]);
  }
  return st;
}

export default function ({ parentElement, data }) {
  const div = parentElement.querySelector("div.live-plotly");
  if (!div || data == null) return undefined;
  const msg = decode(data, parentElement);
  const st = div.__lp ?? initDiv(div);
  // Streamlit may run a superseded invocation after a newer one; never draw older data.
  if (msg.seq > st.seq) {
    st.seq = msg.seq;
    div.dataset.key = msg.key;
    div.style.height = `${msg.height}px`;
    if (msg.figText !== undefined && msg.figText === st.shownText) {
      // The picture shown already (a figure that did not change this tick, such as
      // Compare's target logits while playing): nothing to redraw, and an older figure still
      // waiting is out of date.
      st.pending = null;
      div.dataset.same = String(Number(div.dataset.same ?? 0) + 1);
    } else {
      st.pending = msg;
      enqueue(div, Boolean(msg.urgent));
    }
  }
  // Streamlit also calls this cleanup for superseded invocations while the element stays
  // mounted; only a div that has really left the page is purged.
  return () => {
    setTimeout(() => {
      if (!div.isConnected) purge(div);
    }, 0);
  };
}
