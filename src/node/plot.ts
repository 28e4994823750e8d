/**
 * Charts as PNG files: a Vega-Lite spec -> Vega -> SVG (headless, no canvas) -> PNG via resvg.
 * Used by `loom eval --plot`, the demo report and `loom trace` figures.
 */
import { writeFileSync } from "node:fs";
import { Resvg } from "@resvg/resvg-js";
import * as vega from "vega";
import * as vegaLite from "vega-lite";

export type VegaLiteSpec = vegaLite.TopLevelSpec;

/** Render a Vega-Lite spec to an SVG string. */
export async function renderSvg(spec: VegaLiteSpec): Promise<string> {
  const compiled = vegaLite.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

/** Render a Vega-Lite spec to PNG bytes (white background, system fonts). */
export async function renderPng(spec: VegaLiteSpec, scale = 2): Promise<Uint8Array> {
  const svg = await renderSvg(spec);
  const png = new Resvg(svg, {
    background: "white",
    fitTo: { mode: "zoom", value: scale },
    font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans" },
  }).render();
  return png.asPng();
}

/**
 * `n` colours of a Vega scheme: the first n of a categorical one (category10: n <= 10), n evenly
 * spaced stops of a continuous one (viridis).
 */
export function schemeColors(name: "category10" | "viridis", n: number): string[] {
  switch (name) {
    case "category10":
      return (vega.scheme(name) as string[]).slice(0, n);
    case "viridis": {
      const at = vega.scheme(name) as (t: number) => string;
      return Array.from({ length: n }, (_, i) => at(n === 1 ? 0 : i / (n - 1)));
    }
    default:
      return name satisfies never;
  }
}

export async function writePng(path: string, spec: VegaLiteSpec): Promise<void> {
  writeFileSync(path, await renderPng(spec));
}
