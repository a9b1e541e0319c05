// The gantransfer page: plain JavaScript, no libraries, everything from this server.
"use strict";

const API = "/api/v1";
const $ = (id) => document.getElementById(id);
const state = { token: null, file: null, models: [], urls: {} };

function authHeaders() {
  return state.token ? { Authorization: "Bearer " + state.token } : {};
}

async function errorText(response) {
  try {
    const body = await response.json();
    if (body && body.message) return body.message;
  } catch (e) { /* not JSON */ }
  return `the server answered ${response.status} ${response.statusText}`;
}

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

function setStatus(text) { $("status").textContent = text; }

function replaceUrl(key, blob) {
  if (state.urls[key]) URL.revokeObjectURL(state.urls[key]);
  state.urls[key] = blob ? URL.createObjectURL(blob) : null;
  return state.urls[key];
}

async function loadModels() {
  const response = await fetch(API + "/models", { headers: authHeaders() });
  if (response.status === 401) {
    $("token-row").hidden = false;
    setStatus("This server needs a token.");
    showError(state.token ? "That token was not accepted." : "");
    $("token").focus();
    return;
  }
  if (!response.ok) { showError(await errorText(response)); return; }
  $("token-row").hidden = true;
  showError("");
  state.models = (await response.json()).models;
  const select = $("model");
  select.replaceChildren(...state.models.map((m) => {
    const option = document.createElement("option");
    option.value = m.id;
    option.textContent = m.id + (m.description ? " (" + m.description + ")" : "");
    return option;
  }));
  select.disabled = state.models.length === 0;
  setStatus(state.models.length ? "Choose a photo." : "This server has no models.");
  modelChanged();
}

function modelChanged() {
  const model = state.models.find((m) => m.id === $("model").value);
  const styles = model ? model.styles : [];
  const select = $("style");
  select.replaceChildren(...styles.map((s) => {
    const option = document.createElement("option");
    option.value = option.textContent = s;
    return option;
  }));
  $("style-row").hidden = styles.length === 0;
  updateButton();
}

function updateButton() {
  $("run").disabled = !(state.file && $("model").value);
}

function chooseFile(file) {
  state.file = file || null;
  showError("");
  $("result").hidden = true;
  $("download").hidden = true;
  $("timing").textContent = "";
  const original = $("original");
  if (state.file && state.file.type.startsWith("image/")) {
    original.src = replaceUrl("original", state.file);
    original.hidden = false;
  } else {
    original.hidden = true;
  }
  updateButton();
  if (state.file) translate();
}

async function translate() {
  const modelId = $("model").value;
  if (!state.file || !modelId) return;
  const query = new URLSearchParams({ format: $("format").value });
  if (!$("style-row").hidden && $("style").value) query.set("style", $("style").value);
  showError("");
  setStatus("Translating…");
  $("run").disabled = true;
  $("result").setAttribute("aria-busy", "true");
  delete $("result").dataset.state;
  const started = performance.now();
  try {
    const response = await fetch(
      `${API}/models/${encodeURIComponent(modelId)}/translate?${query}`,
      { method: "POST", body: state.file,
        headers: { ...authHeaders(), "Content-Type": "application/octet-stream" } });
    const seconds = (performance.now() - started) / 1000;
    if (!response.ok) {
      if (response.status === 401) { await loadModels(); }
      showError(await errorText(response));
      setStatus("");
      return;
    }
    const blob = await response.blob();
    const url = replaceUrl("result", blob);
    const result = $("result");
    result.src = url;
    result.hidden = false;
    const model = Number(response.headers.get("X-Model-Seconds") || 0);
    $("timing").textContent = `took ${seconds.toFixed(2)} s (${model.toFixed(2)} s in the model)`;
    const ext = $("format").value === "jpeg" ? "jpg" : "png";
    const stem = state.file.name.replace(/\.[^.]*$/, "") || "photo";
    const link = $("download");
    link.href = url;
    link.download = `${stem}-${modelId}.${ext}`;
    link.hidden = false;
    result.dataset.state = "done";
    setStatus(`Done in ${seconds.toFixed(2)} s.`);
  } catch (e) {
    showError("The server could not be reached: " + e.message);
    setStatus("");
  } finally {
    $("result").removeAttribute("aria-busy");
    updateButton();
  }
}

function setUp() {
  $("model").addEventListener("change", () => { modelChanged(); if (state.file) translate(); });
  $("style").addEventListener("change", () => { if (state.file) translate(); });
  $("file").addEventListener("change", (e) => chooseFile(e.target.files[0]));
  $("controls").addEventListener("submit", (e) => { e.preventDefault(); translate(); });
  $("token-use").addEventListener("click", () => {
    state.token = $("token").value.trim() || null;
    loadModels();
  });
  $("token").addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); $("token-use").click(); }
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) chooseFile(e.dataTransfer.files[0]);
  });
  loadModels().catch((e) => showError("The server could not be reached: " + e.message));
}

document.addEventListener("DOMContentLoaded", setUp);
