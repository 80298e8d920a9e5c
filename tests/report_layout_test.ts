/**
 * What a reader sees in the demo report: line styles that keep coinciding curves visible, and — in a
 * real headless Chromium, at 1400 px and at a 150% zoom — every caption fully visible below its chart
 * and the MLM baseline's line visible where NES's and GDES's lie on top of it. The browser check is
 * skipped, saying so, where no `chromium` is installed (CI installs Debian's).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { demoReport, loadRuns, lossCurves } from "../lib/report/mod.ts";
import { MODE_LINES, modeLine } from "../lib/report/figures.ts";
import { decodePng, findChromium, headless, type Image } from "./_browser.ts";
import { tempDir } from "./_helpers.ts";

/**
 * Four runs of 20 logged steps, probes every 10: the MLM baseline's, NES's and GDES's MLM losses are
 * identical (the case where the baseline's line used to vanish under the others).
 */
async function writeRuns(root: string): Promise<void> {
  for (const mode of ["mlm", "es", "nes", "gdes"]) {
    const dir = join(root, mode);
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(
      join(dir, "config.json"),
      JSON.stringify({ sharing: mode, seed: 0, preset: "tiny", steps: 100, batchSize: 8, seqLength: 128 }),
    );
    const lines = [];
    for (let i = 0; i < 20; i++) {
      const step = 5 * (i + 1), rtd = mode !== "mlm";
      const r: Record<string, number | null> = {
        step,
        loss_mlm: 9 - (mode === "es" ? 0.04 : 0.06) * step,
        loss_rtd: rtd ? 0.6 - 0.002 * step : null,
        disc_acc: rtd ? 0.85 + 0.001 * i : null,
        disc_acc_replaced: rtd ? 0.01 * i : null,
        replaced_frac: rtd ? 0.14 : null,
        gen_acc: rtd ? 0.002 * i : null,
        tokens_per_s: 1000,
      };
      if (step % 10 === 0) {
        Object.assign(r, {
          tow_cos: rtd ? 0.02 * (mode === "es" ? -1 : 1) : null,
          tow_ratio: rtd ? 1.5 : null,
          tow_opposed_rows: rtd ? 0.4 : null,
          sim_gen: 0.2,
          sim_disc: rtd ? 0.1 : null,
          sim_delta: mode === "gdes" ? 0.01 : null,
        });
      }
      lines.push(JSON.stringify(r));
    }
    await Deno.writeTextFile(join(dir, "metrics.jsonl"), lines.join("\n") + "\n");
  }
}

Deno.test("line styles: every mode distinguishable, the MLM baseline drawn first and widest", async () => {
  const styles = ["mlm", "es", "nes", "gdes"].map((m) => JSON.stringify(modeLine(m)));
  assert.equal(new Set(styles).size, 4);
  const widest = Math.max(...Object.values(MODE_LINES).map((l) => l.width));
  assert.ok(MODE_LINES.mlm.width === widest && MODE_LINES.es.width < widest);
  // A second seed of a mode keeps the colour and width, with the next dash pattern.
  assert.equal(modeLine("gdes", 1).width, MODE_LINES.gdes.width);
  assert.notEqual(modeLine("gdes", 1).dash, modeLine("gdes").dash);
  const root = tempDir();
  await writeRuns(root);
  const fig = lossCurves(await loadRuns(root));
  // Plotly draws traces in order: the baseline goes underneath.
  assert.equal(fig.data[0].name, "mlm");
});

const chromium = findChromium();
/** Window height (CSS px) of the screenshots: taller than the whole report at both widths. */
const PAGE_HEIGHT = 7000;

Deno.test({
  name: chromium
    ? "report in headless Chromium (1400 px, 150% zoom): captions fully visible, the MLM line visible under NES/GDES"
    : "report in headless Chromium: SKIPPED, no chromium found (Debian: apt-get install chromium; or set RTDLAB_CHROMIUM)",
  ignore: chromium === null,
  async fn() {
    const root = tempDir("rtdlab-layout-");
    await writeRuns(root);
    const html = await (await demoReport(root)).render();
    // The checking copy paints each caption one flat colour (text transparent) and records where the
    // captions and the loss chart's first plot area are, once plotly has drawn.
    const probe = `<script>window.addEventListener("load", function () { setTimeout(function () {
      var g = { doc: document.documentElement.scrollHeight, captions: [], plot: null };
      document.querySelectorAll(".caption").forEach(function (c, i) {
        c.style.color = "transparent"; c.style.background = "rgb(255, 0, " + (100 + i) + ")";
        var r = c.getBoundingClientRect();
        g.captions.push({ text: c.textContent.slice(0, 50), top: r.top + scrollY, left: r.left,
          width: r.width, height: r.height, blue: 100 + i });
      });
      document.querySelectorAll(".js-plotly-plot").forEach(function (p) {
        var t = (p.layout.title || {}).text || "";
        var area = p.querySelector(".nsewdrag[data-subplot='xy']");
        if (/^Losses/.test(t) && area && !g.plot) {
          var r = area.getBoundingClientRect();
          g.plot = { top: r.top + scrollY, left: r.left, width: r.width, height: r.height };
        }
      });
      document.documentElement.setAttribute("data-geometry", JSON.stringify(g));
    }, 100); });</script>`;
    const page = join(root, "check.html");
    await Deno.writeTextFile(page, html.replace("</body>", `${probe}\n</body>`));
    const url = pathToFileURL(page).href;

    // One browser run per window gives the DOM (with the geometry) and the screenshot; the window's
    // height only has to cover the whole page.
    const wins = [{ width: 1400, scale: 1 }, { width: 933, scale: 1.5 }].map((w) => ({
      ...w,
      height: PAGE_HEIGHT,
    }));
    const runs = await Promise.all(wins.map(async (win) => {
      const shot = join(root, `report-${win.width}.png`);
      const dom = await headless(chromium!, url, win, ["--dump-dom", `--screenshot=${shot}`]);
      return { win, dom, shot };
    }));
    for (const { win, dom, shot } of runs) {
      const where = `${win.width} px at ${win.scale}×`;
      const m = dom.match(/data-geometry="([^"]*)"/);
      assert.ok(m, `${where}: the page's geometry script did not run`);
      const g = JSON.parse(m[1].replace(/&quot;/g, '"').replace(/&amp;/g, "&"));
      assert.ok(g.captions.length >= 6, `${where}: ${g.captions.length} captions`);
      assert.ok(g.plot, `${where}: no loss chart drawn`);
      assert.ok(g.doc <= PAGE_HEIGHT, `${where}: the page is ${g.doc} px tall; raise PAGE_HEIGHT`);
      const img = await decodePng(await Deno.readFile(shot));
      const s = win.scale;
      assert.equal(img.width, Math.round(win.width * s));

      for (const c of g.captions) {
        // Rows of the caption's box where its colour spans most of the width: hidden rows do not count.
        const y0 = Math.ceil(c.top * s), y1 = Math.floor((c.top + c.height) * s);
        const x0 = Math.ceil(c.left * s), x1 = Math.floor((c.left + c.width) * s);
        let visible = 0;
        for (let y = y0; y < y1; y++) {
          if (countColour(img, x0, x1, y, y + 1, [255, 0, c.blue], 0) >= 0.9 * (x1 - x0)) visible++;
        }
        assert.ok(
          visible >= y1 - y0 - 1,
          `${where}: caption "${c.text}…" shows ${visible} of its ${
            y1 - y0
          } pixel rows (covered by the chart above?)`,
        );
      }

      // The baseline's grey shows along the curve where NES and GDES lie exactly on top of it.
      const p = g.plot;
      const x0 = Math.ceil(p.left * s), x1 = Math.floor((p.left + p.width) * s);
      const grey = countColour(img, x0, x1, Math.ceil(p.top * s), Math.floor((p.top + p.height) * s), [
        127,
        127,
        127,
      ], 8);
      assert.ok(grey >= x1 - x0, `${where}: ${grey} grey (MLM) pixels in a ${x1 - x0} px wide plot`);
    }
  },
});

/** Pixels in [x0, x1) × [y0, y1) within `tol` of `rgb` in every channel. */
function countColour(
  img: Image,
  x0: number,
  x1: number,
  y0: number,
  y1: number,
  rgb: number[],
  tol: number,
): number {
  let n = 0;
  for (let y = Math.max(0, y0); y < Math.min(img.height, y1); y++) {
    for (let x = Math.max(0, x0); x < Math.min(img.width, x1); x++) {
      const i = 4 * (y * img.width + x);
      if (
        Math.abs(img.rgba[i] - rgb[0]) <= tol && Math.abs(img.rgba[i + 1] - rgb[1]) <= tol &&
        Math.abs(img.rgba[i + 2] - rgb[2]) <= tol
      ) n++;
    }
  }
  return n;
}
