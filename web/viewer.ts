/**
 * The trajectory viewer: one page, no framework. Reads a `Trajectory` (src/analysis/trajectory.ts,
 * types only) either embedded in the page (`<script type="application/json"
 * id="trajectory-data">`, how report.html works offline) or from `trajectory.json` next to the
 * page (`?trace=PATH` picks another file; how `loom serve` works).
 *
 * Panels: a token strip (click a token; colour by class or by convergence step), a step slider,
 * the selected token's centred PCA path in the planes PC1-2, PC3-4, PC5-6 (other initial states
 * overlaid on demand), the numbers and the logit lens at the current step, and the convergence
 * heatmap (tokens × steps, log distance to the final state; click a cell to jump there).
 * `loom trace` compiles this file with esbuild (types stripped, no bundling).
 */
import type { TokenTrajectory, Trajectory } from "../src/analysis/trajectory.ts";

type ColourBy = "class" | "exit";

const CLASS_COLOURS: Record<TokenTrajectory["class"], string> = {
  "fixed-point": "#2f9e44",
  orbit: "#7048e8",
  slider: "#e8590c",
  unconverged: "#c92a2a",
};

const VIRIDIS = [
  "#440154",
  "#472d7b",
  "#3b528b",
  "#2c728e",
  "#21918c",
  "#28ae80",
  "#5ec962",
  "#addc30",
  "#fde725",
];

/** Viridis at u ∈ [0, 1], linear between 9 stops. */
export function viridis(u: number): string {
  const x = Math.min(1, Math.max(0, Number.isFinite(u) ? u : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const mix = (a: string, b: string, f: number): string => {
    const ca = [1, 3, 5].map((k) => parseInt(a.slice(k, k + 2), 16));
    const cb = [1, 3, 5].map((k) => parseInt(b.slice(k, k + 2), 16));
    return `rgb(${ca.map((v, j) => Math.round(v + (cb[j] - v) * f)).join(",")})`;
  };
  return mix(VIRIDIS[i], VIRIDIS[i + 1], x - i);
}

const SEED_COLOURS = ["#1c7ed6", "#f59f00", "#d6336c", "#0ca678", "#868e96"];

const STYLE = `
.lv { font: 14px system-ui, sans-serif; color: #212529; }
.lv h2 { font-size: 16px; margin: 12px 0 6px; }
.lv .controls { display: flex; gap: 16px; align-items: center; flex-wrap: wrap; margin: 8px 0; }
.lv .tokens { display: flex; flex-wrap: wrap; gap: 3px; margin: 8px 0; }
.lv .tokens button { font: 13px ui-monospace, monospace; border: 2px solid transparent; border-radius: 4px;
  color: white; padding: 3px 6px; cursor: pointer; min-width: 22px; }
.lv .tokens button.selected { border-color: #212529; outline: 2px solid #ffd43b; }
.lv .plots { display: flex; gap: 8px; flex-wrap: wrap; }
.lv .plots svg, .lv .heat svg { background: #fff; border: 1px solid #dee2e6; }
.lv .row { display: flex; gap: 16px; flex-wrap: wrap; align-items: flex-start; }
.lv table.info td { padding: 1px 8px; }
.lv table.info td:first-child { color: #495057; }
.lv .legend span { display: inline-block; margin-right: 10px; }
.lv .legend i { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 4px; vertical-align: -1px; }
`;

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** How a token shows: its text (whitespace made visible) or #id. */
export function tokenLabel(text: string | undefined, id: number): string {
  if (text === undefined) return `#${id}`;
  if (text === "") return `#${id}`;
  return text.replace(/ /g, "␣").replace(/\n/g, "⏎").replace(/\t/g, "⇥");
}

function fmt(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return "–";
  return Math.abs(x) >= 1e-3 && Math.abs(x) < 1e4 ? x.toFixed(4) : x.toExponential(2);
}

interface State {
  token: number;
  step: number; // 1-based
  colourBy: ColourBy;
  seeds: boolean;
}

/** Build the viewer inside `root`. Returns a handle used by tests and the page. */
export function mountViewer(
  root: HTMLElement,
  tr: Trajectory,
): { select(token: number, step?: number): void } {
  const st: State = { token: 0, step: tr.steps, colourBy: "class", seeds: false };
  root.classList.add("lv");
  const style = document.createElement("style");
  style.textContent = STYLE;
  const multiSeed = tr.seeds.length > 1;
  root.innerHTML = `
    <div class="controls">
      <label>colour tokens by <select id="colour-by"><option value="class">class</option>
        <option value="exit">convergence step</option></select></label>
      <label>step <input id="step" type="range" min="1" max="${tr.steps}" value="${tr.steps}">
        <b id="step-label">${tr.steps}</b> / ${tr.steps}</label>
      <label><input id="show-seeds" type="checkbox" ${multiSeed ? "" : "disabled"}>
        compare initial states (${tr.seeds.length} seed${multiSeed ? "s" : ""})</label>
    </div>
    <div class="legend" id="legend"></div>
    <div class="tokens" id="tokens"></div>
    <div class="row"><div class="plots" id="plots"></div><table class="info" id="info"></table></div>
    <h2>Convergence: log₁₀ ‖z<sub>i</sub> − z<sub>N</sub>‖ (rows: tokens, columns: steps)</h2>
    <div class="heat" id="heat"></div>`;
  root.prepend(style);
  const $ = (id: string): HTMLElement => {
    const el = root.querySelector<HTMLElement>(`#${id}`);
    if (el === null) throw new Error(`viewer: #${id} missing`);
    return el;
  };
  const tokenColour = (t: TokenTrajectory): string =>
    st.colourBy === "class"
      ? CLASS_COLOURS[t.class]
      : t.convergenceStep === null
        ? "#adb5bd"
        : viridis((t.convergenceStep - 1) / Math.max(1, tr.steps - 1));

  const renderTokens = (): void => {
    $("tokens").innerHTML = tr.tokens
      .map(
        (t) =>
          `<button data-index="${t.index}" class="${t.index === st.token ? "selected" : ""}" ` +
          `style="background:${tokenColour(t)}" title="#${t.index} id ${t.id}: ${t.class}` +
          `${t.convergenceStep === null ? ", never converged" : `, converged at step ${t.convergenceStep}`}">` +
          `${esc(tokenLabel(t.text, t.id))}</button>`,
      )
      .join("");
    $("legend").innerHTML =
      st.colourBy === "class"
        ? (Object.keys(CLASS_COLOURS) as TokenTrajectory["class"][])
            .map(
              (k) =>
                `<span><i style="background:${CLASS_COLOURS[k]}"></i>${k} (${tr.classCounts[k]})</span>`,
            )
            .join("")
        : `<span><i style="background:${viridis(0)}"></i>step 1</span><span><i style="background:${viridis(1)}"></i>step ${tr.steps}</span>` +
          `<span><i style="background:#adb5bd"></i>never converged (ε = ${tr.convergenceEps})</span>`;
  };

  const renderPlots = (): void => {
    const tok = tr.tokens[st.token];
    const planes = [0, 2, 4].filter((j) => j + 1 < tr.pca.components);
    $("plots").innerHTML = planes.map((j) => planeSvg(tr, tok, j, st)).join("");
  };

  const renderInfo = (): void => {
    const t = tr.tokens[st.token];
    const k = st.step - 1;
    const kind =
      t.class === "orbit"
        ? `orbit, period ${t.period ?? "?"}`
        : t.class === "slider"
          ? `slider, speed ${fmt(t.speed)} (${fmt(t.relativeSpeed)} of ‖z‖ per step)`
          : t.class;
    const lens = t.lens[k]
      .map((c) => `${esc(tokenLabel(c.text, c.id))} <small>${(100 * c.p).toFixed(1)}%</small>`)
      .join(", ");
    const rows: [string, string][] = [
      [
        "token",
        `#${t.index} <b>${esc(tokenLabel(t.text, t.id))}</b> (id ${t.id}${t.generated ? ", generated" : ""})`,
      ],
      [
        "class",
        `<span id="info-class" style="color:${CLASS_COLOURS[t.class]}">${esc(kind)}</span>`,
      ],
      ["converged at", t.convergenceStep === null ? "never" : `step ${t.convergenceStep}`],
      ["seed spread", fmt(t.seedSpread)],
      ["step", `<b id="info-step">${st.step}</b>`],
      ["‖z − z_N‖", fmt(t.distance[k])],
      ["‖Δz‖ / ‖z‖", fmt(t.relativeStep[k])],
      ["cos(z, z_N)", fmt(t.cosine[k])],
      ["lens entropy", fmt(t.entropy[k])],
      ["KL(final ‖ step)", fmt(t.kl[k])],
      ["lens top", `<span id="info-lens">${lens}</span>`],
    ];
    $("info").innerHTML = rows.map(([a, b]) => `<tr><td>${a}</td><td>${b}</td></tr>`).join("");
  };

  const renderHeat = (): void => {
    $("heat").innerHTML = heatmapSvg(tr, st);
  };

  const render = (): void => {
    renderTokens();
    renderPlots();
    renderInfo();
    renderHeat();
  };

  const select = (token: number, step?: number): void => {
    st.token = Math.max(0, Math.min(tr.tokens.length - 1, token));
    if (step !== undefined) st.step = Math.max(1, Math.min(tr.steps, step));
    ($("step") as HTMLInputElement).value = String(st.step);
    $("step-label").textContent = String(st.step);
    render();
  };

  $("tokens").addEventListener("click", (ev) => {
    const b = (ev.target as HTMLElement).closest("button");
    if (b?.dataset.index !== undefined) select(Number(b.dataset.index));
  });
  ($("step") as HTMLInputElement).addEventListener("input", (ev) => {
    select(st.token, Number((ev.target as HTMLInputElement).value));
  });
  ($("colour-by") as HTMLSelectElement).addEventListener("change", (ev) => {
    st.colourBy = (ev.target as HTMLSelectElement).value === "exit" ? "exit" : "class";
    renderTokens();
  });
  ($("show-seeds") as HTMLInputElement).addEventListener("change", (ev) => {
    st.seeds = (ev.target as HTMLInputElement).checked;
    renderPlots();
  });
  $("heat").addEventListener("click", (ev) => {
    const cell = (ev.target as Element).closest("[data-cell]");
    const [t, s] = (cell?.getAttribute("data-cell") ?? "").split(",").map(Number);
    if (cell !== null) select(t, s);
  });
  render();
  return { select };
}

/** One PCA plane (PC j+1 vs PC j+2) of a token: path, points coloured by step, current step. */
function planeSvg(tr: Trajectory, tok: TokenTrajectory, j: number, st: State): string {
  const W = 260;
  const pad = 28;
  const paths = [tok.pca, ...(st.seeds ? tok.seeds.map((s) => s.pca) : [])];
  let lim = 1e-12;
  for (const p of paths) for (const q of p) lim = Math.max(lim, Math.abs(q[j]), Math.abs(q[j + 1]));
  const sx = (v: number): number => pad + ((v / lim + 1) / 2) * (W - 2 * pad);
  const sy = (v: number): number => W - pad - ((v / lim + 1) / 2) * (W - 2 * pad);
  const line = (p: number[][], colour: string, dash: string): string =>
    `<polyline fill="none" stroke="${colour}" stroke-width="1.2" ${dash} points="${p
      .map((q) => `${sx(q[j]).toFixed(1)},${sy(q[j + 1]).toFixed(1)}`)
      .join(" ")}"/>`;
  const seedLines = st.seeds
    ? tok.seeds
        .map((s, i) => line(s.pca, SEED_COLOURS[i % SEED_COLOURS.length], 'stroke-dasharray="4 2"'))
        .join("")
    : "";
  const dots = tok.pca
    .map(
      (q, k) =>
        `<circle cx="${sx(q[j]).toFixed(1)}" cy="${sy(q[j + 1]).toFixed(1)}" r="3" fill="${viridis(k / Math.max(1, tr.steps - 1))}"><title>step ${k + 1}</title></circle>`,
    )
    .join("");
  const cur = tok.pca[st.step - 1];
  const pct = (i: number): string => `${(100 * (tr.pca.varianceRatio[i] ?? 0)).toFixed(1)}%`;
  return `<svg class="plane" width="${W}" height="${W}" viewBox="0 0 ${W} ${W}">
    <line x1="${sx(0)}" y1="${pad / 2}" x2="${sx(0)}" y2="${W - pad / 2}" stroke="#e9ecef"/>
    <line x1="${pad / 2}" y1="${sy(0)}" x2="${W - pad / 2}" y2="${sy(0)}" stroke="#e9ecef"/>
    ${seedLines}${line(tok.pca, "#adb5bd", "")}${dots}
    <circle class="current" cx="${sx(cur[j]).toFixed(1)}" cy="${sy(cur[j + 1]).toFixed(1)}" r="7" fill="none" stroke="#e03131" stroke-width="2.5"/>
    <text x="${W / 2}" y="${W - 6}" text-anchor="middle" font-size="11">PC${j + 1} (${pct(j)})</text>
    <text x="10" y="${W / 2}" font-size="11" transform="rotate(-90 10 ${W / 2})" text-anchor="middle">PC${j + 2} (${pct(j + 1)})</text>
  </svg>`;
}

/** Tokens × steps, colour = log10 distance to the final state; a cursor on the current step. */
function heatmapSvg(tr: Trajectory, st: State): string {
  const cw = Math.max(4, Math.min(18, Math.floor(760 / tr.steps)));
  const ch = Math.max(6, Math.min(16, Math.floor(480 / tr.tokens.length)));
  const left = 60;
  const logs = tr.tokens.flatMap((t) => t.distance.filter((d) => d > 0).map(Math.log10));
  const lo = logs.length > 0 ? Math.min(...logs) : 0;
  const hi = logs.length > 0 ? Math.max(...logs) : 1;
  const cells = tr.tokens
    .map((t) =>
      t.distance
        .map((d, k) => {
          const u = d > 0 ? (Math.log10(d) - lo) / Math.max(1e-12, hi - lo) : 0;
          return `<rect data-cell="${t.index},${k + 1}" x="${left + k * cw}" y="${t.index * ch}" width="${cw}" height="${ch}" fill="${viridis(u)}"><title>${esc(tokenLabel(t.text, t.id))} step ${k + 1}: ${fmt(d)}</title></rect>`;
        })
        .join(""),
    )
    .join("");
  const labels = tr.tokens
    .map(
      (t) =>
        `<text x="${left - 4}" y="${t.index * ch + ch - 2}" font-size="${Math.min(11, ch)}" text-anchor="end" ${
          t.index === st.token ? 'font-weight="bold" fill="#e03131"' : ""
        }>${esc(tokenLabel(t.text, t.id)).slice(0, 8)}</text>`,
    )
    .join("");
  const H = tr.tokens.length * ch;
  const x = left + (st.step - 1) * cw;
  return `<svg width="${left + tr.steps * cw + 8}" height="${H + 20}">${cells}${labels}
    <rect x="${x}" y="0" width="${cw}" height="${H}" fill="none" stroke="#e03131" stroke-width="2"/>
    <rect x="${left - 2}" y="${st.token * ch}" width="${tr.steps * cw + 4}" height="${ch}" fill="none" stroke="#fff" stroke-width="1.5"/>
    <text x="${left}" y="${H + 14}" font-size="11">step 1</text>
    <text x="${left + tr.steps * cw}" y="${H + 14}" font-size="11" text-anchor="end">step ${tr.steps}</text>
  </svg>`;
}

async function load(): Promise<Trajectory> {
  const embedded = document.getElementById("trajectory-data");
  if (embedded?.textContent) return JSON.parse(embedded.textContent) as Trajectory;
  const path = new URLSearchParams(location.search).get("trace") ?? "trajectory.json";
  const res = await fetch(path);
  if (!res.ok) throw new Error(`cannot load ${path}: HTTP ${res.status}`);
  return (await res.json()) as Trajectory;
}

const root = typeof document !== "undefined" ? document.getElementById("viewer") : null;
if (root !== null) {
  load().then(
    (tr) => {
      const handle = mountViewer(root, tr);
      (window as unknown as { loomViewer: unknown }).loomViewer = handle;
      root.dataset.ready = "true";
    },
    (err: unknown) => {
      root.textContent = `viewer: ${err instanceof Error ? err.message : String(err)}`;
      root.dataset.ready = "error";
    },
  );
}
