// End-to-end test of the page in headless Chromium: draws digits with pointer strokes and
// checks what the page shows. Usage: node draw.mjs URL OUT_DIR (xtask/tests/web.rs runs it).
// Prints one JSON summary line; exits 1 with the reasons when a check fails.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const [url, outDir] = process.argv.slice(2);
if (!url || !outDir) {
  console.error("usage: node draw.mjs URL OUT_DIR");
  process.exit(2);
}
const MAX_LATENCY_MS = 50;

// Strokes in pad coordinates (0..1), drawn as a person would.
function ellipse(cx, cy, rx, ry, n = 36) {
  return Array.from({ length: n + 1 }, (_, i) => {
    const a = (2 * Math.PI * i) / n - Math.PI / 2;
    return [cx + rx * Math.cos(a), cy + ry * Math.sin(a)];
  });
}
const DIGITS = [
  { expected: "1", strokes: [[[0.5, 0.14], [0.48, 0.86]]] },
  { expected: "0", strokes: [ellipse(0.5, 0.5, 0.2, 0.32)] },
  { expected: "7", strokes: [[[0.26, 0.18], [0.74, 0.18], [0.42, 0.86]]] },
];

const failures = [];
const check = (ok, message) => { if (!ok) failures.push(message); };

async function draw(page, strokes) {
  const box = await page.locator("#pad").boundingBox();
  const at = ([x, y]) => [box.x + x * box.width, box.y + y * box.height];
  for (const stroke of strokes) {
    const [x0, y0] = at(stroke[0]);
    await page.mouse.move(x0, y0);
    await page.mouse.down();
    for (const point of stroke.slice(1)) {
      const [x, y] = at(point);
      await page.mouse.move(x, y, { steps: 10 });
    }
    await page.mouse.up();
  }
}

async function readResult(page) {
  return page.evaluate(() => ({
    prediction: document.getElementById("prediction").textContent.trim(),
    values: document.getElementById("probabilities").dataset.values,
    latency: Number(document.getElementById("prediction").dataset.latencyMs),
    maps: document.querySelectorAll("#maps canvas").length,
    kernels: document.querySelectorAll("#kernels canvas").length,
    mapsNote: document.getElementById("maps-note").textContent,
    input: (() => {
      const c = document.getElementById("input");
      const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let ink = 0;
      for (let i = 0; i < d.length; i += 4) ink += d[i] > 0 ? 1 : 0;
      return ink;
    })(),
  }));
}

// The shipped models the page offers and the channels of their first conv (one kernel and
// one feature map each).
const MODELS = { small_cnn: 10, medium_cnn: 10, mnist_best: 16 };
// What each one's maps are taken after, as the page says it.
const AFTER = { small_cnn: "after ReLU", medium_cnn: "after ReLU", mnist_best: "after batch norm and ReLU" };

function checkResult(r, expected, label, channels) {
  const probs = r.values.split(",").map(Number);
  const sum = probs.reduce((a, b) => a + b, 0);
  check(r.prediction.startsWith(expected), `${label}: predicted "${r.prediction}", expected ${expected}`);
  check(probs.length === 10 && Math.abs(sum - 1) < 1e-3, `${label}: probabilities ${r.values} sum to ${sum}`);
  check(r.maps === channels && r.kernels === channels, `${label}: ${r.maps} feature maps and ${r.kernels} kernels shown, expected ${channels} each`);
  const model = label.split(" ")[0];
  check(r.mapsNote.includes(`drawing, ${AFTER[model]},`), `${label}: the maps' note reads "${r.mapsNote}"`);
  check(r.input > 20, `${label}: the 28x28 input panel shows ${r.input} ink pixels`);
  check(r.latency <= MAX_LATENCY_MS, `${label}: the prediction came ${r.latency} ms after the stroke (limit ${MAX_LATENCY_MS} ms)`);
  return { digit: expected, model, prediction: r.prediction, sum: Number(sum.toFixed(6)), latency_ms: r.latency };
}

mkdirSync(outDir, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
const errors = [];
const results = [];
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(url);
  await page.waitForSelector("body[data-ready=true]", { timeout: 30000 });

  // medium_cnn last: its 7 is the README's screenshot.
  for (const model of ["small_cnn", "mnist_best", "medium_cnn"]) {
    await page.selectOption("#model", model);
    await page.waitForFunction((m) => document.getElementById("model").value === m, model);
    for (const { expected, strokes } of DIGITS) {
      await page.click("#clear");
      await draw(page, strokes);
      results.push(checkResult(await readResult(page), expected, `${model} digit ${expected}`, MODELS[model]));
    }
  }
  await page.screenshot({ path: `${outDir}/web-desktop.png` });

  await page.click("#random");
  const random = await readResult(page);
  const sum = random.values.split(",").map(Number).reduce((a, b) => a + b, 0);
  check(/^[0-9]/.test(random.prediction) && Math.abs(sum - 1) < 1e-3,
    `random test digit: prediction "${random.prediction}", probabilities sum to ${sum}`);
  check(/labelled [0-9]/.test(await page.textContent("#digit-info")), "random test digit: its label is not shown");

  await page.setViewportSize({ width: 390, height: 844 });
  await page.click("#clear");
  await draw(page, DIGITS[2].strokes);
  await page.screenshot({ path: `${outDir}/web-phone.png`, fullPage: true });
  results.push(checkResult(await readResult(page), "7", "medium_cnn digit 7 (phone)", MODELS.medium_cnn));
} finally {
  await browser.close();
}
check(errors.length === 0, `console errors: ${errors.join(" | ")}`);
const latencies = results.map((r) => r.latency_ms).sort((a, b) => a - b);
console.log(JSON.stringify({
  results,
  max_latency_ms: latencies[latencies.length - 1],
  median_latency_ms: latencies[Math.floor(latencies.length / 2)],
}));
if (failures.length) {
  for (const f of failures) console.error(`FAIL ${f}`);
  process.exit(1);
}
