// `loom trace`: record latent trajectories of a token sequence (src/analysis/trajectory.ts) and
// write trajectory.json, PNG figures (Vega-Lite) and a self-contained, interactive report.html.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildReport, tokenText } from "../../src/analysis/report.ts";
import {
  type Trajectory,
  generateGreedy,
  recordTrajectory,
} from "../../src/analysis/trajectory.ts";
import { CharTokenizer } from "../../src/data/tokenizer.ts";
import type { RavenModel } from "../../src/model/model.ts";
import { loadModel } from "../../src/node/model-io.ts";
import { type VegaLiteSpec, renderPng } from "../../src/node/plot.ts";
import { CliError, type Flags, bool, need, num } from "../args.ts";
import type { Command } from "../command.ts";
import { PROMPT_FRAME_FLAGS, promptRows } from "../io.ts";
import { compileViewer } from "./serve.ts";

export const traceCommand: Command = {
  name: "trace",
  summary: "record latent trajectories: convergence, PCA, token classes, logit lens, report",
  usage:
    "loom trace --model DIR (--tokens FILE.json | --prompt TEXT) --steps N [--seeds K] [--generate G] --out DIR",
  flags: {
    model: { type: "string", help: "model directory (config.json + safetensors)", required: true },
    tokens: { type: "string", help: "JSON array of token-id arrays; traces --row (or --all-rows)" },
    prompt: { type: "string", help: "text, encoded with the model's tokenizer.json" },
    ...PROMPT_FRAME_FLAGS,
    row: { type: "int", help: "which row of --tokens to trace", default: 0 },
    "all-rows": { type: "boolean", help: "trace every row, into OUT/row-<i>/", default: false },
    steps: { type: "int", help: "recurrence steps N (default: the config's mean_recurrence)" },
    seeds: {
      type: "int",
      help: "initial states s_0 (seeds seed … seed+K−1): path independence",
      default: 1,
    },
    seed: { type: "int", help: "first seed", default: 0 },
    generate: {
      type: "int",
      help: "first append G greedy tokens (full recompute), then trace",
      default: 0,
    },
    "top-k": { type: "int", help: "logit-lens candidates kept per step", default: 5 },
    figures: {
      type: "boolean",
      help: "write PNG figures (and put them in the report)",
      default: true,
    },
    out: { type: "string", help: "output directory", required: true },
  },
  async run({ flags }) {
    const dir = need("trace", flags, "model");
    const { model, tokenizer } = loadModel(dir);
    const tok = tokenizer === null ? null : CharTokenizer.fromJSON(tokenizer);
    const rows = promptRows("trace", flags, tok, dir);
    const steps = num(flags, "steps") ?? model.config.meanRecurrence;
    if (steps < 1) throw new CliError("loom trace: --steps must be at least 1");
    const K = num(flags, "seeds") ?? 1;
    if (K < 1) throw new CliError("loom trace: --seeds must be at least 1");
    const seed0 = num(flags, "seed") ?? 0;
    const seeds = Array.from({ length: K }, (_, i) => seed0 + i);
    const decode = tok === null ? undefined : (id: number): string => decodeOne(tok, id);
    const out = need("trace", flags, "out");
    const picked = bool(flags, "all-rows")
      ? rows.map((r, i) => [r, i] as const)
      : [pickRow(flags, rows)];
    for (const [ids, i] of picked) {
      checkIds(ids, model);
      const gen = num(flags, "generate") ?? 0;
      const full = gen > 0 ? generateGreedy(model, ids, gen, steps, seeds[0]) : ids;
      const tr = recordTrajectory(model, full, {
        steps,
        seeds,
        topK: num(flags, "top-k") ?? 5,
        generated: full.length - ids.length,
        ...(decode ? { decode } : {}),
      });
      const dir = picked.length > 1 ? join(out, `row-${i}`) : out;
      await writeTrace(dir, tr, bool(flags, "figures"));
      console.log(summary(dir, tr));
    }
  },
};

function pickRow(flags: Flags, rows: number[][]): readonly [number[], number] {
  const r = num(flags, "row") ?? 0;
  if (r >= rows.length)
    throw new CliError(`loom trace: --row ${r}, but the token file has ${rows.length} row(s)`);
  return [rows[r], r];
}

function checkIds(ids: readonly number[], m: RavenModel): void {
  const V = m.config.vocabSize;
  const bad = ids.find((id) => id < 0 || id >= V);
  if (bad !== undefined)
    throw new CliError(`loom trace: token id ${bad} is outside the vocabulary [0, ${V})`);
  if (ids.length > m.config.blockSize) {
    throw new CliError(
      `loom trace: ${ids.length} tokens exceed the context (block_size ${m.config.blockSize})`,
    );
  }
}

function decodeOne(tok: CharTokenizer, id: number): string {
  return id < tok.vocabSize ? tok.decode([id], { showSpecials: true }) : `#${id}`;
}

const label = (t: Trajectory["tokens"][number]): string => `${t.index}: ${tokenText(t.text, t.id)}`;

async function writeTrace(dir: string, tr: Trajectory, figures: boolean): Promise<void> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "trajectory.json"), JSON.stringify(tr));
  const specs = figures ? figureSpecs(tr) : [];
  const rendered = [];
  for (const f of specs) {
    const png = await renderPng(f.spec);
    writeFileSync(join(dir, f.file), png);
    rendered.push({
      title: f.title,
      caption: f.caption,
      pngBase64: Buffer.from(png).toString("base64"),
    });
  }
  const command = ["loom", ...process.argv.slice(2)]
    .map((a) => (/^[\w./=:,-]+$/.test(a) ? a : JSON.stringify(a)))
    .join(" ");
  const html = buildReport({
    trajectory: tr,
    figures: rendered,
    viewerScript: await compileViewer(),
    command,
  });
  writeFileSync(join(dir, "report.html"), html);
}

function summary(dir: string, tr: Trajectory): string {
  const counts = Object.entries(tr.classCounts)
    .map(([k, n]) => `${k} ${n}`)
    .join(", ");
  const conv = tr.tokens.map((t) => t.convergenceStep ?? "-").join(" ");
  return `loom trace: ${tr.tokens.length} tokens × ${tr.steps} steps → ${dir}\n  classes: ${counts}\n  convergence steps: ${conv}`;
}

interface FigureSpec {
  file: string;
  title: string;
  caption: string;
  spec: VegaLiteSpec;
}

/** Up to `max` tokens spread over the sequence, keeping at least one of every class present. */
export function pickTokens(tr: Trajectory, max: number): number[] {
  const T = tr.tokens.length;
  if (T <= max) return tr.tokens.map((t) => t.index);
  const chosen = new Set<number>();
  for (const cls of Object.keys(tr.classCounts)) {
    const first = tr.tokens.find((t) => t.class === cls);
    if (first) chosen.add(first.index);
  }
  for (let k = 0; chosen.size < max && k < max; k++)
    chosen.add(Math.round((k * (T - 1)) / (max - 1)));
  return [...chosen].sort((a, b) => a - b).slice(0, max);
}

function figureSpecs(tr: Trajectory): FigureSpec[] {
  const tokens = tr.tokens.map(label);
  const cellW = Math.max(6, Math.min(22, Math.floor(700 / tr.steps)));
  const cellH = Math.max(8, Math.min(20, Math.floor(600 / tr.tokens.length)));
  const heat = (field: "distance" | "kl", title: string): VegaLiteSpec => {
    const values = tr.tokens.flatMap((t) =>
      t[field].map((v, k) => ({ token: label(t), step: k + 1, value: v })),
    );
    const positive = values.map((v) => v.value).filter((v) => v > 0);
    const floor = positive.length > 0 ? Math.min(...positive) : 1e-6;
    return {
      $schema: "https://vega.github.io/schema/vega-lite/v5.json",
      data: { values: values.map((v) => ({ ...v, value: Math.max(v.value, floor) })) },
      mark: "rect",
      width: cellW * tr.steps,
      height: cellH * tr.tokens.length,
      encoding: {
        x: { field: "step", type: "ordinal", title: "recurrence step" },
        y: { field: "token", type: "ordinal", sort: tokens, title: "token" },
        color: {
          field: "value",
          type: "quantitative",
          scale: { type: "log", scheme: "viridis" },
          title,
        },
      },
    };
  };
  const figs: FigureSpec[] = [
    {
      file: "convergence.png",
      title: "Convergence heatmap",
      caption: `‖ln_f(s_i) − ln_f(s_N)‖ per token (rows) and step (columns), log colour; the last column (0) is drawn at the smallest value.`,
      spec: heat("distance", "‖z_i − z_N‖"),
    },
    {
      file: "lens-kl.png",
      title: "Logit lens: KL to the final distribution",
      caption: "KL(p_N ‖ p_i) in nats of each step's state decoded through the coda, log colour.",
      spec: heat("kl", "KL (nats)"),
    },
  ];
  if (tr.pca.components >= 2) figs.push(pcaFigure(tr));
  return figs;
}

function pcaFigure(tr: Trajectory): FigureSpec {
  const chosen = pickTokens(tr, 10);
  const planes = [0, 2, 4].filter((j) => j + 1 < tr.pca.components);
  const name = (t: Trajectory["tokens"][number]): string =>
    `${label(t)} (${t.class}${t.period === undefined ? "" : ` ${t.period}`})`;
  const values = chosen.flatMap((i) => {
    const t = tr.tokens[i];
    return planes.flatMap((j) =>
      t.pca.map((p, k) => ({
        token: name(t),
        plane: `PC${j + 1} vs PC${j + 2}`,
        x: p[j],
        y: p[j + 1],
        step: k + 1,
      })),
    );
  });
  const spec: VegaLiteSpec = {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    data: { values },
    facet: {
      row: { field: "plane", type: "nominal", title: null },
      column: {
        field: "token",
        type: "nominal",
        title: null,
        sort: chosen.map((i) => name(tr.tokens[i])),
      },
    },
    spec: {
      width: 120,
      height: 120,
      layer: [
        {
          mark: { type: "line", color: "#adb5bd", strokeWidth: 1 },
          encoding: {
            x: {
              field: "x",
              type: "quantitative",
              title: null,
              axis: { labels: false, ticks: false },
            },
            y: {
              field: "y",
              type: "quantitative",
              title: null,
              axis: { labels: false, ticks: false },
            },
            order: { field: "step", type: "quantitative" },
          },
        },
        {
          mark: { type: "circle", size: 28, opacity: 1 },
          encoding: {
            x: { field: "x", type: "quantitative" },
            y: { field: "y", type: "quantitative" },
            color: {
              field: "step",
              type: "quantitative",
              scale: { scheme: "viridis" },
              title: "step",
            },
          },
        },
      ],
    },
    resolve: { scale: { x: "independent", y: "independent" } },
  };
  return {
    file: "pca-tokens.png",
    title: "Per-token PCA trajectories",
    caption:
      `One PCA fitted on every (step, token) latent jointly; each token centred on its own centre of mass, ` +
      `planes PC1-2, PC3-4, PC5-6 (rows), coloured by step (dark: early, yellow: late). ` +
      `Tokens shown: ${chosen.length} of ${tr.tokens.length}.`,
    spec,
  };
}
