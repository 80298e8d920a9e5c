/**
 * Test helpers for looking at a page in a real browser: find Debian's `chromium`, run it headless
 * (`--dump-dom` after scripts ran, `--screenshot`), and decode the PNG it writes.
 *
 * @module
 */

import { join } from "node:path";

/** The Chromium executable: $RTDLAB_CHROMIUM, else the first of the usual names on PATH; null when none. */
export function findChromium(): string | null {
  const named = Deno.env.get("RTDLAB_CHROMIUM");
  if (named) return named;
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    for (const name of ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]) {
      try {
        if (Deno.statSync(join(dir, name)).isFile) return join(dir, name);
      } catch { /* not here */ }
    }
  }
  return null;
}

/** Window of a headless run: CSS pixels and device scale (1.5 = a 150% zoom). */
export interface BrowserWindow {
  width: number;
  height: number;
  scale: number;
}

/** Runs headless Chromium on `url` with `extra` (e.g. `--dump-dom`); returns stdout, throws with stderr. */
export async function headless(
  chromium: string,
  url: string,
  win: BrowserWindow,
  extra: string[],
): Promise<string> {
  const profile = Deno.makeTempDirSync({ prefix: "rtdlab-chromium-" });
  try {
    const out = await new Deno.Command(chromium, {
      args: [
        "--headless",
        "--no-sandbox", // CI runs as root
        "--disable-gpu",
        "--hide-scrollbars",
        "--force-color-profile=srgb", // exact colours in screenshots
        `--user-data-dir=${profile}`,
        "--virtual-time-budget=10000", // let the page's scripts (plotly) finish
        `--window-size=${win.width},${win.height}`,
        `--force-device-scale-factor=${win.scale}`,
        ...extra,
        url,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(`chromium failed: ${new TextDecoder().decode(out.stderr).slice(-2000)}`);
    }
    return new TextDecoder().decode(out.stdout);
  } finally {
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

/** A decoded image: `rgba[4 * (y * width + x) + c]`. */
export interface Image {
  width: number;
  height: number;
  rgba: Uint8Array;
}

/** Decodes an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes). */
export async function decodePng(bytes: Uint8Array): Promise<Image> {
  const sig = [137, 80, 78, 71, 13, 10, 26, 10];
  if (!sig.every((b, i) => bytes[i] === b)) throw new Error("not a PNG file");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let width = 0, height = 0, channels = 0;
  const idat: Uint8Array<ArrayBuffer>[] = [];
  for (let p = 8; p < bytes.length;) {
    const len = view.getUint32(p);
    const type = new TextDecoder().decode(bytes.subarray(p + 4, p + 8));
    const data = bytes.subarray(p + 8, p + 8 + len);
    if (type === "IHDR") {
      width = view.getUint32(p + 8);
      height = view.getUint32(p + 12);
      const [depth, color, , , interlace] = data.subarray(8, 13);
      if (depth !== 8 || (color !== 2 && color !== 6) || interlace !== 0) {
        throw new Error(`PNG: only 8-bit RGB/RGBA non-interlaced, got depth ${depth} colour ${color}`);
      }
      channels = color === 6 ? 4 : 3;
    } else if (type === "IDAT") idat.push(data.slice());
    else if (type === "IEND") break;
    p += 12 + len;
  }
  const raw = new Uint8Array(
    await new Response(new Blob(idat).stream().pipeThrough(new DecompressionStream("deflate"))).arrayBuffer(),
  );
  const stride = width * channels;
  const px = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = px.subarray(y * stride, (y + 1) * stride);
    const up = y > 0 ? px.subarray((y - 1) * stride, y * stride) : new Uint8Array(stride);
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? row[i - channels] : 0, b = up[i], c = i >= channels ? up[i - channels] : 0;
      let pred = 0;
      if (filter === 1) pred = a;
      else if (filter === 2) pred = b;
      else if (filter === 3) pred = (a + b) >> 1;
      else if (filter === 4) {
        const pa = Math.abs(b - c), pb = Math.abs(a - c), pc = Math.abs(a + b - 2 * c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      row[i] = (src[i] + pred) & 255;
    }
  }
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0, j = 0; i < px.length; i += channels, j += 4) {
    rgba[j] = px[i];
    rgba[j + 1] = px[i + 1];
    rgba[j + 2] = px[i + 2];
    rgba[j + 3] = channels === 4 ? px[i + 3] : 255;
  }
  return { width, height, rgba };
}
