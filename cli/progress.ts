/**
 * A one-line progress bar on stderr: `[#####.....] 45% step 450/1000 loss 0.412 r=9 1.2k tok/s
 * ETA 3m12s`. On a terminal it redraws in place (at most ~8 times a second); otherwise (CI, a
 * pipe) it prints a plain line every `logEverySeconds`.
 */

export interface ProgressOptions {
  /** Where the bar goes (default process.stderr). */
  stream?: NodeJS.WriteStream;
  /** Non-TTY: seconds between plain log lines (default 10). */
  logEverySeconds?: number;
  /** Print nothing at all. */
  quiet?: boolean;
}

export class ProgressBar {
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;
  private readonly quiet: boolean;
  private readonly logEvery: number;
  private lastDraw = 0;
  private lastLen = 0;

  constructor(o: ProgressOptions = {}) {
    this.stream = o.stream ?? process.stderr;
    this.tty = this.stream.isTTY;
    this.quiet = o.quiet ?? false;
    this.logEvery = (o.logEverySeconds ?? 10) * 1000;
  }

  /** Redraw with completion `fraction` (0..1) and a free-form status text. */
  update(fraction: number, text: string, force = false): void {
    if (this.quiet) return;
    const now = Date.now();
    const interval = this.tty ? 120 : this.logEvery;
    if (!force && now - this.lastDraw < interval) return;
    this.lastDraw = now;
    const f = Math.min(Math.max(fraction, 0), 1);
    const width = 20;
    const filled = Math.round(f * width);
    const line = `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${(100 * f).toFixed(0).padStart(3)}% ${text}`;
    if (this.tty) {
      const pad = Math.max(this.lastLen - line.length, 0);
      this.stream.write(`\r${line}${" ".repeat(pad)}`);
      this.lastLen = line.length;
    } else {
      this.stream.write(`${line}\n`);
    }
  }

  /** Print a message on its own line (keeping the bar intact on a terminal). */
  log(message: string): void {
    if (this.quiet) return;
    if (this.tty && this.lastLen > 0) this.stream.write(`\r${" ".repeat(this.lastLen)}\r`);
    this.stream.write(`${message}\n`);
    this.lastLen = 0;
    this.lastDraw = 0;
  }

  /** End the bar's line. */
  done(): void {
    if (this.quiet) return;
    if (this.tty && this.lastLen > 0) this.stream.write("\n");
    this.lastLen = 0;
  }
}

/** 3725 -> "1h02m", 125 -> "2m05s", 7.2 -> "7s". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** 1234 -> "1.2k", 56 -> "56". */
export function formatCount(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return n.toFixed(0);
}

/** "10m" -> 600, "600s" -> 600, "1.5h" -> 5400, "3m30s" -> 210, "90" -> 90 (seconds); null when malformed. */
export function parseDuration(text: string): number | null {
  const t = text.trim();
  if (/^\d+(?:\.\d+)?$/.test(t)) return Number(t);
  const re = /(\d+(?:\.\d+)?)\s*(h|min|m|sec|s)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(t); m !== null; m = re.exec(t)) {
    const unit = m[2];
    total += Number(m[1]) * (unit === "h" ? 3600 : unit.startsWith("m") ? 60 : 1);
    matched = re.lastIndex;
  }
  return matched > 0 && matched === t.length ? total : null;
}
