// The page of `zoo serve`: plain JavaScript, no framework, nothing fetched from outside this server.
"use strict";

const PAGE = { "X-Zoo-Page": "1" };   // the server refuses changes without it (see app.py)
const $ = (selector) => document.querySelector(selector);
const state = { models: [], chosenModel: null, files: [], jobs: new Map(), version: -1, pulls: {}, limit: 0 };

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== false && value !== null && value !== undefined) node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

const megabytes = (bytes) => bytes < 1e6
  ? `${Math.max(1, Math.round(bytes / 1e3))} KB`
  : `${(bytes / 1e6).toLocaleString(undefined, { maximumFractionDigits: 1 })} MB`;
const seconds = (value) => `${value.toFixed(1)} s`;

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const body = response.status === 204 ? {} : await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

function say(message) {
  const line = el("p", { text: message });
  $("#messages").append(line);
}

// ------------------------------------------------------------------------------------------------ models

async function loadModels() {
  const table = await api("/api/models");
  state.models = table.models;
  if (!state.chosenModel || !state.models.some((m) => m.name === state.chosenModel)) {
    state.chosenModel = table.default || (state.models[0] && state.models[0].name);
    renderStems();
  }
  renderModels();
}

function weightsCell(model) {
  const pull = state.pulls[model.name];
  const cell = el("td", { class: "weights" });
  if (pull && !["done", "failed"].includes(pull.state)) {
    const fraction = pull.total ? pull.done / pull.total : null;
    const label = pull.state === "download"
      ? `downloading ${megabytes(pull.done)}${pull.total ? ` of ${megabytes(pull.total)}` : ""}`
      : pull.state === "verify" ? "verifying the file's hashes…" : "converting…";
    cell.append(el("progress", { max: 1, value: pull.state === "download" && fraction !== null ? fraction : null,
                                 "aria-label": `weights of ${model.name}` }),
                el("span", { class: "pull-state", text: label }));
    return cell;
  }
  cell.append(el("span", { class: model.cached ? "ok" : "muted", text: model.cached ? "✓ " + model.weights : model.weights }));
  if (!model.cached && model.downloadable) {
    cell.append(" ", el("button", { type: "button", class: "small", text: "Get weights",
                                    "aria-label": `Get the weights of ${model.name}`, onclick: () => pullWeights(model.name) }));
  }
  if (pull) cell.append(el("div", { class: pull.state === "done" ? "pull-done" : "pull-failed", text: pull.message }));
  return cell;
}

function renderModels() {
  const body = $("#model-table tbody");
  body.replaceChildren(...state.models.map((model) => {
    const id = `model-${model.name}`;
    const radio = el("input", { type: "radio", name: "model", id, value: model.name,
                                checked: model.name === state.chosenModel,
                                onchange: () => { state.chosenModel = model.name; renderStems(); renderModels(); } });
    const row = el("tr", { class: model.name === state.chosenModel ? "chosen-row" : "", "data-model": model.name },
      el("td", {}, radio),
      el("td", {}, el("label", { for: id, title: model.description, text: model.name })),
      el("td", { class: "stems-cell", text: model.stems.join(", ") }),
      el("td", { class: "num", text: model.parameters.toLocaleString() }),
      el("td", { class: "num", text: model.paper_sdr === null ? "–" : model.paper_sdr.toFixed(2) }),
      weightsCell(model),
      el("td", { class: "num", text: model.speed ? `${model.speed.toFixed(1)}× real time` : "not measured" }));
    row.addEventListener("click", (event) => {
      if (event.target.closest("button, input, label")) return;
      radio.checked = true; radio.dispatchEvent(new Event("change"));
    });
    return row;
  }));
  const model = currentModel();
  $("#start-note").textContent = model && !model.cached
    ? `${model.name} has no weights here yet${model.downloadable ? ": get them in its row first" : ""}.` : "";
}

const currentModel = () => state.models.find((m) => m.name === state.chosenModel);

function renderStems() {
  const model = currentModel();
  const boxes = $("#stem-boxes");
  if (!model) { boxes.replaceChildren(); return; }
  boxes.replaceChildren(...model.stems.map((stem) => el("label", { class: "stem-choice" },
    el("input", { type: "checkbox", name: "stem", value: stem, checked: true }), ` ${stem}`)));
  const karaoke = karaokeStem(model);
  $("#karaoke").disabled = !karaoke;
  $("#karaoke").title = karaoke ? `only ${karaoke}` : "this model has no accompaniment stem";
}

const karaokeStem = (model) => model.stems.find((s) => s === "accompaniment" || s === "instrumental");

function setStems(which) {
  for (const box of document.querySelectorAll("#stem-boxes input")) box.checked = which(box.value);
}

async function pullWeights(name) {
  try {
    await api(`/api/models/${encodeURIComponent(name)}/pull`, { method: "POST", headers: PAGE });
    state.pulls[name] = { state: "download", done: 0, total: null };
    renderModels();
    poll();
  } catch (error) { say(`${name}: ${error.message}`); }
}

// ------------------------------------------------------------------------------------------------ files

function addFiles(list) {
  for (const file of list) state.files.push({ file, status: "waiting", error: null });
  renderFiles();
}

function renderFiles() {
  $("#chosen").replaceChildren(...state.files.map((item, index) => el("li", { class: item.error ? "error" : "" },
    el("span", { class: "file-name", text: item.file.name }),
    el("span", { class: "hint", text: `${megabytes(item.file.size)} · ${item.error ? "refused (see the message below)" : item.status}` }),
    item.status === "uploading" ? null : el("button", { type: "button", class: "small link-button", text: "Remove",
      "aria-label": `Remove ${item.file.name} from the list`,
      onclick: () => { state.files.splice(index, 1); renderFiles(); } }))));
}

function upload(item, model, stems) {
  // XMLHttpRequest rather than fetch: it reports the upload's progress
  return new Promise((resolve) => {
    const request = new XMLHttpRequest();
    const query = new URLSearchParams({ name: item.file.name, model, stems: stems.join(",") });
    request.open("POST", `/api/jobs?${query}`);
    request.setRequestHeader("X-Zoo-Page", "1");
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) { item.status = `uploading ${Math.round(100 * event.loaded / event.total)}%`; renderFiles(); }
    };
    request.onload = () => {
      let body = {};
      try { body = JSON.parse(request.responseText || "{}"); } catch (_) { /* keep {} */ }
      resolve(request.status < 300 ? { ok: true } : { ok: false, error: body.error || `${request.status} ${request.statusText}` });
    };
    request.onerror = () => resolve({ ok: false, error: "the upload was interrupted (is the server still running?)" });
    request.send(item.file);
  });
}

async function start() {
  $("#messages").replaceChildren();
  const model = currentModel();
  const stems = [...document.querySelectorAll("#stem-boxes input:checked")].map((box) => box.value);
  if (!state.files.length) { say("Choose or drop at least one file first."); return; }
  if (!stems.length) { say("Tick at least one stem."); return; }
  $("#start").disabled = true;
  let scrolled = false;
  for (const item of [...state.files]) {
    if (item.error) continue;
    item.status = "uploading";
    renderFiles();
    const result = await upload(item, model.name, stems);
    if (result.ok) {
      state.files.splice(state.files.indexOf(item), 1);
      if (!scrolled) { scrolled = true; $("#queue-title").scrollIntoView({ behavior: "smooth", block: "start" }); }
    } else { item.error = result.error; say(result.error); }
    renderFiles();
    poll();
  }
  state.files = state.files.filter((item) => item.error);  // what failed stays listed with its message
  renderFiles();
  $("#start").disabled = false;
}

// ------------------------------------------------------------------------------------------------ queue

let pollTimer = null;
async function poll() {
  clearTimeout(pollTimer);
  let busy = false;
  try {
    const view = await api("/api/state");
    busy = view.jobs.some((job) => job.state === "queued" || job.state === "running")
        || Object.values(view.pulls).some((pull) => !["done", "failed"].includes(pull.state));
    if (view.version !== state.version) update(view);
  } catch (error) {
    busy = true;  // try again soon: the server may be restarting
  }
  pollTimer = setTimeout(poll, busy ? 400 : 2000);
}

function update(view) {
  const pullsEnded = Object.entries(view.pulls).some(([name, pull]) =>
    ["done", "failed"].includes(pull.state) && (state.pulls[name] || {}).state !== pull.state);
  const jobsEnded = view.jobs.some((job) => ["done", "failed"].includes(job.state)
    && state.jobs.has(job.id) && state.jobs.get(job.id).job.state !== job.state);
  state.version = view.version;
  state.pulls = view.pulls;
  state.limit = view.max_upload_bytes;
  $("#limit").textContent = megabytes(view.max_upload_bytes);
  $("#cleanup-note").textContent = "Uploads are deleted once separated; stems are deleted "
    + `${view.keep_hours} hours after they were made, or at once with Remove.`;
  renderJobs(view.jobs);
  if (pullsEnded || jobsEnded) loadModels(); else renderModels();
}

function renderJobs(jobs) {
  const list = $("#jobs");
  const seen = new Set();
  for (const job of jobs) {
    seen.add(job.id);
    let entry = state.jobs.get(job.id);
    if (!entry) {
      entry = { node: jobNode(job), job: null, stemsShown: false };
      state.jobs.set(job.id, entry);
      list.append(entry.node);
    }
    entry.job = job;
    updateJob(entry);
  }
  for (const [id, entry] of state.jobs) {
    if (!seen.has(id)) { entry.node.remove(); state.jobs.delete(id); }
  }
  $("#queue-empty").hidden = jobs.length > 0;
}

function jobNode(job) {
  return el("li", { class: "job", "data-job": job.id },
    el("div", { class: "job-head" },
      el("span", { class: "job-name", text: job.name }),
      el("span", { class: "job-model" }),
      el("span", { class: "job-state", role: "status" }),
      el("button", { type: "button", class: "small link-button", text: "Remove",
                     "aria-label": `Remove ${job.name} and its stems`, onclick: () => removeJob(job.id) })),
    el("div", { class: "job-progress" },
      el("progress", { max: 1, value: 0, "aria-label": `Progress of ${job.name}` }),
      el("span", { class: "job-progress-text" })),
    el("p", { class: "job-error" }),
    el("div", { class: "stems" }));
}

function updateJob(entry) {
  const { node, job } = entry;
  node.className = `job state-${job.state}`;
  node.querySelector(".job-model").textContent = job.label || job.model;
  const { done, total, sample_rate: rate } = job.progress;
  const bar = node.querySelector("progress");
  const text = node.querySelector(".job-progress-text");
  const stateText = { queued: "waiting", running: "separating", done: "done", failed: "failed" }[job.state];
  node.querySelector(".job-state").textContent = stateText;
  if (job.state === "running" && !done) {
    bar.value = 0;
    text.textContent = `starting: loading ${job.model} and the first block…`;
  } else if (job.state === "running" && total && rate) {
    bar.value = Math.min(1, done / total);
    text.textContent = `${seconds(done / rate)} of ${seconds(total / rate)} of audio · ${Math.round(100 * Math.min(1, done / total))}%`;
  } else if (job.state === "queued") {
    bar.value = 0;
    text.textContent = total && rate ? `${seconds(total / rate)} of audio, waiting for the files before it` : "waiting";
  } else if (job.state === "done") {
    bar.value = 1;
    text.textContent = `${seconds(job.frames / job.sample_rate)} of audio in ${seconds(job.seconds)}`;
  } else {
    text.textContent = "";
  }
  node.querySelector(".job-progress").hidden = job.state === "failed";
  node.querySelector(".job-error").textContent = job.error || "";
  if (job.state === "done" && !entry.stemsShown) {
    entry.stemsShown = true;
    showStems(node.querySelector(".stems"), job);
  }
}

function showStems(container, job) {
  const base = `/api/jobs/${job.id}`;
  for (const stem of Object.keys(job.outputs)) {
    const url = `${base}/stems/${encodeURIComponent(stem)}`;
    const audio = el("audio", { controls: true, preload: "metadata", src: url, "aria-label": `${stem} of ${job.name}` });
    const canvas = el("canvas", { class: "wave", height: 64, role: "img", "aria-label": `Waveform of ${stem}` });
    container.append(el("figure", { class: "stem", "data-stem": stem },
      el("figcaption", {}, el("span", { class: "stem-name", text: stem }),
        el("a", { href: `${url}?download=1`, download: `${job.track} - ${stem}.wav`, text: "Download WAV" })),
      canvas, audio));
    drawWave(canvas, audio, `${base}/peaks/${encodeURIComponent(stem)}`);
  }
  container.append(el("a", { class: "zip button-link", href: `${base}/zip`, download: `${job.track} (${job.label}).zip`,
                             text: "Download all stems (zip)" }));
}

async function drawWave(canvas, audio, url) {
  let peaks;
  try { peaks = await api(url); } catch (error) { return; }
  const paint = () => {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth * ratio, height = canvas.clientHeight * ratio;
    if (canvas.width !== width) canvas.width = width;
    canvas.height = height;
    const context = canvas.getContext("2d");
    const played = audio.duration ? audio.currentTime / audio.duration : 0;
    const styles = getComputedStyle(canvas);
    const count = peaks.min.length;
    for (let x = 0; x < width; x++) {
      const i = Math.min(count - 1, Math.floor(x / width * count));
      const top = (1 - Math.max(-1, Math.min(1, peaks.max[i]))) * height / 2;
      const bottom = (1 - Math.max(-1, Math.min(1, peaks.min[i]))) * height / 2;
      context.fillStyle = x / width < played ? styles.getPropertyValue("--played") : styles.getPropertyValue("--wave");
      context.fillRect(x, top, 1, Math.max(1, bottom - top));
    }
  };
  paint();
  let frame = null;
  const loop = () => { paint(); frame = audio.paused ? null : requestAnimationFrame(loop); };
  audio.addEventListener("play", () => { if (!frame) loop(); });
  audio.addEventListener("seeked", paint);
  audio.addEventListener("pause", paint);
  window.addEventListener("resize", paint);
  canvas.addEventListener("click", (event) => {  // click the waveform to jump there
    if (!audio.duration) return;
    audio.currentTime = audio.duration * (event.offsetX / canvas.clientWidth);
    paint();
  });
}

async function removeJob(id) {
  try { await api(`/api/jobs/${id}`, { method: "DELETE", headers: PAGE }); poll(); }
  catch (error) { say(error.message); }
}

// ------------------------------------------------------------------------------------------------ start-up

function setUp() {
  const input = $("#file-input");
  input.addEventListener("change", () => { addFiles(input.files); input.value = ""; });
  const drop = $("#drop");
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) drop.addEventListener(name, () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => { event.preventDefault(); addFiles(event.dataTransfer.files); });
  $("#start").addEventListener("click", start);
  $("#all-stems").addEventListener("click", () => setStems(() => true));
  $("#karaoke").addEventListener("click", () => { const k = karaokeStem(currentModel()); setStems((s) => s === k); });
  loadModels().catch((error) => say(`cannot load the models: ${error.message}`));
  poll();
}

document.addEventListener("DOMContentLoaded", setUp);
