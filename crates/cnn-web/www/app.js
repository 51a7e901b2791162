// The page's logic: loads the engine (crates/cnn-web compiled to wasm), the models listed in
// models.json and a few real test digits; turns pointer strokes into a drawing; shows what
// the engine returns. All preprocessing and inference happen in the wasm module.
"use strict";

const $ = (id) => document.getElementById(id);
// Output buffers of the engine (crates/cnn-web/src/ffi.rs).
const OUT_TEXT = 0, OUT_INPUT = 1, OUT_PANEL = 2;

let wasm = null;
let manifest = null;
let current = null;
const loaded = {};
let framePending = false;
let strokeEnd = null;

async function loadEngine() {
  const module = await WebAssembly.compileStreaming(fetch("cnn_web.wasm"));
  // candle links wasm-bindgen's random-number imports, which inference never calls: each
  // import gets a stub that would fail loudly, so the module needs no generated glue.
  const imports = {};
  for (const imp of WebAssembly.Module.imports(module)) {
    imports[imp.module] ??= {};
    imports[imp.module][imp.name] = () => {
      throw new Error(`the engine called ${imp.module}.${imp.name}, which the page does not provide`);
    };
  }
  wasm = (await WebAssembly.instantiate(module, imports)).exports;
}

function withBytes(bytes, use) {
  const ptr = wasm.cnn_alloc(bytes.length);
  new Uint8Array(wasm.memory.buffer, ptr, bytes.length).set(bytes);
  try {
    return use(ptr);
  } finally {
    wasm.cnn_free(ptr, bytes.length);
  }
}

function out(which) {
  return new Uint8Array(wasm.memory.buffer, wasm.cnn_out_ptr(which), wasm.cnn_out_len(which)).slice();
}

function outText() {
  return new TextDecoder().decode(out(OUT_TEXT));
}

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

// ---- panels -------------------------------------------------------------------------

function paintTile(canvas, rgba, offset, rows, cols) {
  canvas.width = cols;
  canvas.height = rows;
  const tile = new ImageData(cols, rows);
  tile.data.set(rgba.subarray(offset, offset + rows * cols * 4));
  canvas.getContext("2d").putImageData(tile, 0, 0);
}

function tiles(container, panel, rgba, label) {
  if (container.children.length !== panel.count) {
    container.replaceChildren();
    for (let i = 0; i < panel.count; i++) {
      const figure = document.createElement("figure");
      const canvas = document.createElement("canvas");
      canvas.className = "pixelated";
      const caption = document.createElement("figcaption");
      caption.textContent = label(i);
      figure.append(canvas, caption);
      container.append(figure);
    }
  }
  const size = panel.rows * panel.cols * 4;
  [...container.querySelectorAll("canvas")].forEach((canvas, i) =>
    paintTile(canvas, rgba, i * size, panel.rows, panel.cols));
}

function ramp(id, which) {
  wasm.cnn_ramp(which);
  paintTile($(id), out(OUT_PANEL), 0, 1, 256);
}

function showModel(model) {
  const { info, entry } = model;
  const data = { mnist: "MNIST", fashion: "Fashion-MNIST" }[entry.dataset] ?? entry.dataset;
  const accuracy = entry.test_accuracy ? ` · ${(100 * entry.test_accuracy).toFixed(2)}% on ${data} test` : "";
  $("model-info").textContent = `${info.parameters.toLocaleString("en")} parameters${accuracy}`;
  const bars = $("probabilities");
  bars.replaceChildren();
  info.classes.forEach((name) => {
    const row = document.createElement("div");
    row.className = "bar";
    row.innerHTML = '<span class="name"></span><span class="track"><span class="fill"></span></span><span class="value"></span>';
    row.querySelector(".name").textContent = name;
    bars.append(row);
  });
  if (info.kernels) {
    const k = info.kernels;
    $("kernel-note").textContent = `Its ${k.count} ${k.rows}x${k.cols} filters on one zero-centred scale: blue negative, white zero, red positive.`;
    tiles($("kernels"), k, model.kernels, (i) => `${i}`);
    $("kernel-min").textContent = `−${info.kernels.scale.toFixed(2)}`;
    $("kernel-max").textContent = `+${info.kernels.scale.toFixed(2)}`;
  } else {
    $("kernels").textContent = "The first layer of this model is not a convolution.";
  }
  const after = info.maps_after ? `, ${info.maps_after}` : "";
  $("maps-note").textContent = `What each kernel finds in your drawing${after}, all on one shared scale.`;
}

function showBlank() {
  $("prediction").textContent = "–";
  $("confidence").textContent = "Draw a digit in the box.";
  $("probabilities").dataset.values = "";
  for (const row of $("probabilities").children) {
    row.classList.remove("winner");
    row.querySelector(".fill").style.width = "0";
    row.querySelector(".value").textContent = "";
  }
  $("input").getContext("2d").clearRect(0, 0, 28, 28);
  $("maps").replaceChildren();
  $("map-max").textContent = "";
}

function showInput(pixels, [rows, cols]) {
  const canvas = $("input");
  canvas.width = cols;
  canvas.height = rows;
  const image = new ImageData(cols, rows);
  pixels.forEach((v, i) => image.data.set([v, v, v, 255], 4 * i));
  canvas.getContext("2d").putImageData(image, 0, 0);
}

function showAnalysis(result, input, maps) {
  const names = current.info.classes;
  const probs = result.probabilities;
  $("prediction").textContent = names[result.prediction];
  $("confidence").textContent = `${(100 * probs[result.prediction]).toFixed(1)}% sure`;
  const bars = $("probabilities");
  bars.dataset.values = probs.map((p) => p.toFixed(6)).join(",");
  [...bars.children].forEach((row, i) => {
    row.classList.toggle("winner", i === result.prediction);
    row.querySelector(".fill").style.width = `${(100 * probs[i]).toFixed(1)}%`;
    row.querySelector(".value").textContent = `${(100 * probs[i]).toFixed(1)}%`;
  });
  showInput(input, result.input);
  if (result.maps) {
    tiles($("maps"), result.maps, maps, (i) => `${i}`);
    $("map-max").textContent = result.maps.scale.toFixed(2);
    // 0 after ReLU; below zero for tanh, SiLU, GELU or no activation.
    $("map-min").textContent = result.maps.low === 0 ? "0" : result.maps.low.toFixed(2);
  }
}

// ---- analysis -----------------------------------------------------------------------

function analyse() {
  if (!current) return;
  const pad = $("pad");
  const pixels = pad.getContext("2d").getImageData(0, 0, pad.width, pad.height).data;
  const code = withBytes(pixels, (ptr) => wasm.cnn_analyse(current.handle, ptr, pad.width, pad.height));
  if (code < 0) {
    setStatus(`cannot analyse the drawing: ${outText()}`, true);
  } else if (code === 0) {
    showBlank();
  } else {
    showAnalysis(JSON.parse(outText()), out(OUT_INPUT), out(OUT_PANEL));
  }
  if (strokeEnd !== null) {
    const ms = performance.now() - strokeEnd;
    strokeEnd = null;
    $("prediction").dataset.latencyMs = ms.toFixed(1);
    $("timing").textContent = `· updated ${ms.toFixed(1)} ms after the stroke ended`;
  }
}

function scheduleAnalysis() {
  if (framePending) return;
  framePending = true;
  requestAnimationFrame(() => {
    framePending = false;
    analyse();
  });
}

// ---- drawing pad --------------------------------------------------------------------

function clearPad() {
  const pad = $("pad");
  const ctx = pad.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  $("digit-info").textContent = "";
}

function setUpPad() {
  const pad = $("pad");
  const ctx = pad.getContext("2d", { willReadFrequently: true });
  let last = null;
  const at = (e) => {
    const r = pad.getBoundingClientRect();
    return [(e.clientX - r.left) * pad.width / r.width, (e.clientY - r.top) * pad.height / r.height];
  };
  const segment = (a, b) => {
    ctx.strokeStyle = "#000";
    ctx.lineWidth = pad.width / 14;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(a[0], a[1]);
    ctx.lineTo(b[0], b[1]);
    ctx.stroke();
  };
  pad.addEventListener("pointerdown", (e) => {
    e.preventDefault();
    pad.setPointerCapture(e.pointerId);
    $("digit-info").textContent = "";
    last = at(e);
    segment(last, last);
    scheduleAnalysis();
  });
  pad.addEventListener("pointermove", (e) => {
    if (!last) return;
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
    for (const c of events.length ? events : [e]) {
      const p = at(c);
      segment(last, p);
      last = p;
    }
    scheduleAnalysis();
  });
  const end = (e) => {
    if (!last) return;
    last = null;
    strokeEnd = e.timeStamp;
    analyse();
  };
  pad.addEventListener("pointerup", end);
  pad.addEventListener("pointercancel", end);
}

function drawTestDigit(digits) {
  const { rows, cols, count } = digits;
  const i = Math.floor(Math.random() * count);
  const image = new ImageData(cols, rows);
  for (let p = 0; p < rows * cols; p++) {
    const v = 255 - digits.pixels[i * rows * cols + p];
    image.data.set([v, v, v, 255], 4 * p);
  }
  const small = document.createElement("canvas");
  small.width = cols;
  small.height = rows;
  small.getContext("2d").putImageData(image, 0, 0);
  const pad = $("pad");
  const ctx = pad.getContext("2d");
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(small, 0, 0, pad.width, pad.height);
  $("digit-info").textContent = `test image ${digits.first + i}, labelled ${digits.labels[i]}`;
  analyse();
}

// ---- start --------------------------------------------------------------------------

function setStatus(message, isError = false) {
  $("status").textContent = message;
  $("status").classList.toggle("error", isError);
}

async function useModel(id) {
  if (!loaded[id]) {
    const entry = manifest.models.find((m) => m.id === id);
    const bytes = await fetchBytes(entry.file);
    const handle = withBytes(bytes, (ptr) => wasm.cnn_load(ptr, bytes.length));
    if (handle < 0) throw new Error(`${entry.file}: ${outText()}`);
    loaded[id] = { handle, entry, info: JSON.parse(outText()), kernels: out(OUT_PANEL) };
  }
  current = loaded[id];
  showModel(current);
  analyse();
}

async function main() {
  await loadEngine();
  manifest = await (await fetch("models.json")).json();
  const select = $("model");
  for (const m of manifest.models) select.add(new Option(m.label, m.id));
  select.addEventListener("change", () => useModel(select.value).catch((e) => setStatus(e.message, true)));
  const d = manifest.digits;
  const bytes = await fetchBytes(d.file);
  const digits = { ...d, pixels: bytes.subarray(0, d.count * d.rows * d.cols), labels: bytes.subarray(d.count * d.rows * d.cols) };
  ramp("kernel-ramp", 0);
  ramp("map-ramp", 1);
  setUpPad();
  clearPad();
  $("clear").addEventListener("click", () => { clearPad(); analyse(); });
  $("random").addEventListener("click", () => drawTestDigit(digits));
  await useModel(manifest.models[0].id);
  setStatus("Ready: draw a digit in the white box (mouse, finger or pen).");
  document.body.dataset.ready = "true";
}

main().catch((e) => setStatus(`The page could not start: ${e.message}`, true));
