// The viewer in a real browser: `loom serve` on 127.0.0.1 (ephemeral port) over a trace of a tiny
// model, driven by playwright-core with Debian's chromium. Click a token, scrub the step, check
// the DOM followed, and check the screenshot is a non-blank PNG. Without chromium the test skips
// with a diagnostic, except under CI (CI set), where it fails: CI must `apt-get install chromium`.
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { inflateSync } from "node:zlib";
import { presets } from "../src/model/config.ts";
import { initModel } from "../src/model/model.ts";
import { saveModel } from "../src/node/model-io.ts";
import { Rng } from "../src/tensor/random.ts";

const CHROMIUM = process.env.LOOM_CHROMIUM ?? "/usr/bin/chromium";
const missing = existsSync(CHROMIUM)
  ? null
  : `no browser at ${CHROMIUM} (apt-get install -y chromium)`;
if (missing !== null && (process.env.CI ?? "") !== "") {
  test("viewer: chromium is installed (required in CI)", () => {
    assert.fail(`${missing}; CI must install it`);
  });
}

const root = new URL("..", import.meta.url).pathname;
let dir = "";
let server: ChildProcess | null = null;
let url = "";

before(async () => {
  if (missing !== null) return;
  dir = mkdtempSync(join(tmpdir(), "loom-viewer-"));
  saveModel(join(dir, "model"), initModel(presets.tiny, new Rng(3)));
  writeFileSync(join(dir, "tokens.json"), JSON.stringify([[1, 17, 42, 5, 77, 30, 9, 12]]));
  const trace = spawnSync(
    process.execPath,
    [
      "bin/loom.js",
      "trace",
      "--model",
      join(dir, "model"),
      "--tokens",
      join(dir, "tokens.json"),
    ].concat(["--steps", "8", "--seeds", "2", "--no-figures", "--out", join(dir, "trace")]),
    { cwd: root, encoding: "utf8" },
  );
  assert.equal(trace.status, 0, trace.stderr);
  server = spawn(process.execPath, ["bin/loom.js", "serve", join(dir, "trace"), "--port", "0"], {
    cwd: root,
    stdio: ["ignore", "pipe", "inherit"],
  });
  url = await new Promise<string>((ok, fail) => {
    let out = "";
    server?.stdout?.on("data", (b: Buffer) => {
      out += b.toString();
      const m = /http:\/\/127\.0\.0\.1:\d+\//.exec(out);
      if (m) ok(m[0]);
    });
    server?.once("exit", (code) => {
      fail(new Error(`loom serve exited with ${code}: ${out}`));
    });
  });
});

after(() => {
  server?.kill("SIGTERM");
  if (dir !== "") rmSync(dir, { recursive: true, force: true });
});

test("viewer: pick a token, scrub the step, screenshot", { skip: missing ?? false }, async () => {
  assert.match(url, /^http:\/\/127\.0\.0\.1:/);
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--no-first-run",
    ],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(url);
    await page.waitForSelector("#viewer[data-ready='true']", { timeout: 15000 });
    assert.equal(await page.locator("#tokens button").count(), 8);
    assert.equal(await page.locator("svg.plane").count(), 3);
    // pick token 3
    await page.click("#tokens button[data-index='3']");
    assert.equal(await page.getAttribute("#tokens button.selected", "data-index"), "3");
    assert.match(await page.innerText("#info"), /#3/);
    // scrub the step slider from 8 to 2: the info and the PCA cursor move
    const before = await page.getAttribute("svg.plane circle.current", "cx");
    await page.fill("#step", "2");
    assert.equal(await page.innerText("#info-step"), "2");
    assert.equal(await page.innerText("#step-label"), "2");
    const after = await page.getAttribute("svg.plane circle.current", "cx");
    assert.notEqual(after, before);
    // compare initial states: dashed paths of the second seed appear
    await page.check("#show-seeds");
    assert.ok((await page.locator("svg.plane polyline[stroke-dasharray]").count()) >= 3);
    // colour by convergence step re-colours the strip
    const c0 = await page.getAttribute("#tokens button[data-index='0']", "style");
    await page.selectOption("#colour-by", "exit");
    const c1 = await page.getAttribute("#tokens button[data-index='0']", "style");
    assert.ok(c0 !== null && c1 !== null);
    const png = await page.screenshot({ fullPage: true });
    const path = join(dir, "viewer.png");
    writeFileSync(path, png);
    if (process.env.LOOM_SCREENSHOT !== undefined) writeFileSync(process.env.LOOM_SCREENSHOT, png);
    assertNonBlankPng(png);
    // the report opens from disk and is interactive too
    await page.goto(`file://${join(dir, "trace", "report.html")}`);
    await page.waitForSelector("#viewer[data-ready='true']", { timeout: 15000 });
    assert.equal(await page.locator("#lens tbody tr").count(), 8);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

/** A PNG whose decoded pixels are not all one colour (8-bit RGB/RGBA, non-interlaced). */
function assertNonBlankPng(png: Buffer): void {
  assert.equal(png.subarray(1, 4).toString("latin1"), "PNG");
  const width = png.readUInt32BE(16);
  const height = png.readUInt32BE(20);
  const [depth, type] = [png[24], png[25]];
  assert.ok(width > 100 && height > 100 && depth === 8 && (type === 2 || type === 6));
  const chunks: Buffer[] = [];
  for (let o = 8; o < png.length;) {
    const len = png.readUInt32BE(o);
    if (png.subarray(o + 4, o + 8).toString("latin1") === "IDAT")
      chunks.push(png.subarray(o + 8, o + 8 + len));
    o += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(chunks));
  const bpp = type === 6 ? 4 : 3;
  const stride = width * bpp + 1;
  // distinct byte triples of the filtered scanlines: a one-colour image filters to one or two
  const colours = new Set<number>();
  for (let y = 0; y < height; y += 7) {
    for (let x = 0; x < width * bpp; x += bpp * 5)
      colours.add(
        raw[y * stride + 1 + x] * 65536 + raw[y * stride + 2 + x] * 256 + raw[y * stride + 3 + x],
      );
  }
  assert.ok(colours.size > 20, `screenshot looks blank: ${colours.size} distinct values`);
}
