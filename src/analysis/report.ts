/**
 * report.html: one self-contained page (opens from disk, no network) built from a Trajectory,
 * PNG figures (base64) and the compiled viewer script. Pure: the caller reads and writes files.
 *
 * Sections: summary, the interactive viewer (data embedded), the figures, the class of every
 * token, and the logit-lens table (rows: tokens; columns: steps; cell: the lens' top token).
 */
import type { TokenClass } from "./classify.ts";
import type { TokenTrajectory, Trajectory } from "./trajectory.ts";

export interface ReportFigure {
  title: string;
  caption: string;
  pngBase64: string;
}

export interface ReportInput {
  trajectory: Trajectory;
  figures: readonly ReportFigure[];
  /** The viewer as one ES module (web/viewer.ts compiled); omitted: no interactive section. */
  viewerScript?: string;
  /** The command line that produced the trace, shown verbatim. */
  command?: string;
  title?: string;
}

const CLASS_COLOURS: Record<TokenClass, string> = {
  "fixed-point": "#2f9e44",
  orbit: "#7048e8",
  slider: "#e8590c",
  unconverged: "#c92a2a",
};

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JSON or JS safe inside a <script> element. */
function scriptSafe(s: string): string {
  return s.replace(/<\/(script)/gi, "<\\/$1").replace(/<!--/g, "<\\!--");
}

/** How a token shows in tables: text with visible whitespace, or #id. */
export function tokenText(text: string | undefined, id: number): string {
  if (text === undefined || text === "") return `#${id}`;
  return text.replace(/ /g, "␣").replace(/\n/g, "⏎").replace(/\t/g, "⇥");
}

function fmt(x: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return "–";
  return Math.abs(x) >= 1e-2 && Math.abs(x) < 1e4 ? x.toFixed(digits) : x.toExponential(2);
}

function describe(t: TokenTrajectory): string {
  if (t.class === "orbit") return `orbit (period ${t.period ?? "?"})`;
  if (t.class === "slider") return `slider (${fmt(t.relativeSpeed)} of ‖z‖ per step)`;
  return t.class;
}

/** The figures are rendered at 2× scale: show them at half their pixel width. */
function cssWidth(pngBase64: string): string {
  const head = atob(pngBase64.slice(0, 32)); // 24 bytes: signature, IHDR length and type, width
  if (head.slice(1, 4) !== "PNG") return "";
  const w = [16, 17, 18, 19].reduce((a, i) => a * 256 + head.charCodeAt(i), 0);
  return `width="${Math.round(w / 2)}" `;
}

export function buildReport(input: ReportInput): string {
  const tr = input.trajectory;
  const title = input.title ?? "loom trace: inside the loop";
  const counts = (Object.keys(tr.classCounts) as TokenClass[])
    .map(
      (k) =>
        `<span class="pill" style="background:${CLASS_COLOURS[k]}">${k}: ${tr.classCounts[k]}</span>`,
    )
    .join(" ");
  const converged = tr.tokens.map((t) => t.convergenceStep).filter((s): s is number => s !== null);
  const meanConv =
    converged.length > 0 ? converged.reduce((a, b) => a + b, 0) / converged.length : null;
  const viewer =
    input.viewerScript === undefined
      ? ""
      : `<h2>Interactive viewer</h2>
<p class="note">Pick a token, scrub the step, colour by class or convergence step, compare initial states.</p>
<div id="viewer"></div>
<script type="application/json" id="trajectory-data">${scriptSafe(JSON.stringify(tr))}</script>
<script type="module">${scriptSafe(input.viewerScript)}</script>`;
  const figures = input.figures
    .map(
      (
        f,
      ) => `<figure><img alt="${escapeHtml(f.title)}" ${cssWidth(f.pngBase64)}src="data:image/png;base64,${f.pngBase64}">
<figcaption><b>${escapeHtml(f.title)}.</b> ${escapeHtml(f.caption)}</figcaption></figure>`,
    )
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 16px 24px; color: #212529; max-width: 1400px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #dee2e6; }
.note { color: #495057; } code, pre { font: 12px ui-monospace, monospace; background: #f1f3f5; padding: 2px 4px; }
.pill { color: white; border-radius: 10px; padding: 2px 8px; font-size: 12px; }
figure { margin: 12px 0; } figure img { max-width: 100%; border: 1px solid #dee2e6; }
figcaption { color: #495057; font-size: 13px; max-width: 900px; }
table.data { border-collapse: collapse; font-size: 12px; }
table.data th, table.data td { border: 1px solid #dee2e6; padding: 2px 5px; text-align: left; }
table.lens td { font-family: ui-monospace, monospace; text-align: center; white-space: nowrap; }
table.lens td.final { background: #d3f9d8; }
.scroll { overflow-x: auto; }
</style></head><body>
<h1>${escapeHtml(title)}</h1>
<p>${tr.tokens.length} tokens, ${tr.steps} recurrence steps, ${tr.seeds.length} initial state(s) (seeds ${tr.seeds.join(", ")}),
model width ${tr.model.nEmbd}, ${tr.model.nLayersInPrelude}/${tr.model.nLayersInRecurrentBlock}/${tr.model.nLayersInCoda} prelude/core/coda blocks,
trained mean recurrence ${tr.model.meanRecurrence}.</p>
<p>Classes: ${counts}. Converged (‖Δz‖/‖z‖ &lt; ${tr.convergenceEps}): ${converged.length} of ${tr.tokens.length} tokens${
    meanConv === null ? "" : `, at step ${fmt(meanConv, 1)} on average`
  }. PCA (fitted jointly on every step and token) explains ${tr.pca.varianceRatio
    .map((r, i) => `PC${i + 1} ${(100 * r).toFixed(1)}%`)
    .join(", ")}.</p>
${input.command === undefined ? "" : `<p>Produced by <code>${escapeHtml(input.command)}</code>.</p>`}
${viewer}
<h2>Figures</h2>
${figures}
<h2>Token classes</h2>
${classTable(tr)}
<h2>Logit lens: what each step would have said</h2>
<p class="note">Each step's state decoded through the coda and head; green: the same top token as the final step.
Hover a cell for its probability.</p>
<div class="scroll">${lensTable(tr)}</div>
<h2>Criteria</h2>
<p class="note">Measured on the last half of the steps. <b>fixed-point</b>: the last ${tr.classifyOptions.fixedWindow} relative steps
‖Δz‖/‖z‖ are below ${tr.classifyOptions.epsFixed}. <b>slider</b>: successive steps point the same way
(mean cosine &gt; ${tr.classifyOptions.sliderCos}), the path is straight (&gt; ${tr.classifyOptions.sliderStraightness}) and the speed steady
(CV &lt; ${tr.classifyOptions.steadyCv}). <b>orbit</b>: the state returns within ${tr.classifyOptions.recurrenceTol} step lengths after p ≥ 2 steps,
or turns by a steady angle with a period that fits in the window. <b>unconverged</b>: none of these.
Convergence step: the first step from which ‖Δz‖/‖z‖ stays below ${tr.convergenceEps}.</p>
</body></html>
`;
}

function classTable(tr: Trajectory): string {
  const rows = tr.tokens
    .map((t) => {
      const last = t.lens[t.lens.length - 1][0];
      return `<tr><td>${t.index}</td><td><code>${escapeHtml(tokenText(t.text, t.id))}</code></td><td>${t.id}</td>
<td style="color:${CLASS_COLOURS[t.class]}"><b>${escapeHtml(describe(t))}</b></td>
<td>${t.convergenceStep ?? "never"}</td><td>${fmt(t.relativeStep[t.relativeStep.length - 1])}</td>
<td>${fmt(t.distance[0])}</td><td>${tr.seeds.length > 1 ? fmt(t.seedSpread) : "–"}</td>
<td><code>${escapeHtml(tokenText(last.text, last.id))}</code> ${(100 * last.p).toFixed(1)}%</td></tr>`;
    })
    .join("\n");
  return `<table class="data" id="classes"><thead><tr><th>#</th><th>token</th><th>id</th><th>class</th>
<th>converged at</th><th>last ‖Δz‖/‖z‖</th><th>‖z₁ − z_N‖</th><th>seed spread</th><th>predicts (final)</th></tr></thead>
<tbody>${rows}</tbody></table>`;
}

function lensTable(tr: Trajectory): string {
  const head = Array.from({ length: tr.steps }, (_, k) => `<th>${k + 1}</th>`).join("");
  const rows = tr.tokens
    .map((t) => {
      const final = t.lens[t.lens.length - 1][0].id;
      const cells = t.lens
        .map((l) => {
          const c = l[0];
          return `<td class="${c.id === final ? "final" : ""}" title="${escapeHtml(tokenText(c.text, c.id))}: ${(100 * c.p).toFixed(1)}%">${escapeHtml(tokenText(c.text, c.id))}</td>`;
        })
        .join("");
      return `<tr><th><code>${escapeHtml(tokenText(t.text, t.id))}</code></th>${cells}</tr>`;
    })
    .join("\n");
  return `<table class="data lens" id="lens"><thead><tr><th>token \\ step</th>${head}</tr></thead><tbody>${rows}</tbody></table>`;
}
