// The semsearch search page: search as you type (debounced, stale requests cancelled).
// Every piece of server text goes through textContent, never innerHTML, so documents
// containing markup are shown as text and cannot run script.
"use strict";

const $ = (id) => document.getElementById(id);
const DEBOUNCE_MS = 180;
const SNIPPET_CHARS = 320;
let collections = [];
let timer = null;
let inflight = null;
let asking = null;

function apiKey() { return sessionStorage.getItem("semsearch-key") || ""; }

async function api(path, body, signal) {
  const headers = { "Content-Type": "application/json" };
  if (apiKey()) headers.Authorization = "Bearer " + apiKey();
  const res = await fetch(path, body === undefined ? { headers, signal } : { method: "POST", headers, body: JSON.stringify(body), signal });
  const data = await res.json().catch(() => ({}));
  if (res.status === 401) $("key-row").hidden = false;
  if (!res.ok) throw new Error((data.error && data.error.message) || res.statusText);
  return data;
}

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function current() { return collections.find((c) => c.name === $("collection").value) || collections[0]; }

function applyCapabilities() {
  const c = current();
  const options = c ? c.search_options : [];
  for (const opt of $("mode").options) opt.disabled = !(c && c.modes.includes(opt.value));
  $("mode").disabled = !options.includes("mode");
  if ($("mode").selectedOptions[0].disabled) $("mode").value = "dense";
  const filters = options.includes("where");
  $("filter-key").disabled = $("filter-value").disabled = !filters;
  $("filter-group").title = filters ? "Only documents whose metadata has this value" : "Filters need a newer semsearch server";
}

async function loadCollections() {
  try {
    const data = await api("/collections");
    collections = data.collections;
    const select = $("collection");
    select.replaceChildren(...collections.map((c) => {
      const o = document.createElement("option");
      o.value = c.name;
      o.textContent = `${c.name} (${c.documents.toLocaleString()} docs)`;
      o.selected = c.name === data.default;
      return o;
    }));
    select.parentElement.hidden = collections.length < 2;
    applyCapabilities();
    loadAskOptions();
    setStatus(collections.length ? "" : "No collections.");
    if ($("query").value.trim()) runSearch();
  } catch (e) {
    setStatus(e.message, true);
  }
}

function filterValue(text) {
  // Numbers and true/false are sent as such; wrap in quotes to search for the text "2020".
  const t = text.trim();
  if (/^-?\d+(\.\d+)?$/.test(t)) return Number(t);
  if (t === "true" || t === "false") return t === "true";
  const quoted = t.match(/^"(.*)"$/);
  return quoted ? quoted[1] : t;
}

function buildRequest(query) {
  const body = { query, k: Number($("k").value) };
  const c = current();
  if (c && c.search_options.includes("mode")) body.mode = $("mode").value;
  const key = $("filter-key").value.trim();
  if (key && !$("filter-key").disabled && $("filter-value").value.trim()) body.where = { [key]: filterValue($("filter-value").value) };
  return body;
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(runSearch, DEBOUNCE_MS);
}

async function runSearch() {
  const query = $("query").value.trim();
  const url = new URL(location.href);
  url.searchParams.set("q", query);
  history.replaceState(null, "", query ? url : location.pathname);
  if (inflight) inflight.abort();
  if (!query || !collections.length) { $("results").replaceChildren(); setStatus(""); return; }
  const controller = new AbortController();
  inflight = controller;
  try {
    const started = performance.now();
    const data = await api(`/collections/${encodeURIComponent(current().name)}/search`, buildRequest(query), controller.signal);
    if (controller !== inflight) return;
    const { hits, no_good_match: noGoodMatch } = data.results[0];
    render(hits, query);
    const took = `${hits.length} result${hits.length === 1 ? "" : "s"} in ${Math.round(performance.now() - started)} ms`;
    setStatus(noGoodMatch ? `No good match: nothing in this collection answers that well (${took}; the closest shown)` : took);
  } catch (e) {
    if (e.name !== "AbortError") setStatus(e.message, true);
  }
}

// Words too common to be worth marking in a snippet.
const STOPWORDS = new Set(("the and for with that this from are was were has have had not but you your our its into " +
  "than then them they their there what when where which who how why can could would should will about over " +
  "under near some any all one").split(" "));

function terms(query) {
  const words = query.toLowerCase().match(/[\p{L}\p{N}]{3,}/gu) || [];
  return [...new Set(words)].filter((w) => !STOPWORDS.has(w)).sort((a, b) => b.length - a.length);
}

function snippetOf(text, words) {
  const flat = text.replace(/\s+/g, " ").trim();
  if (flat.length <= SNIPPET_CHARS) return flat;
  const lower = flat.toLowerCase();
  const first = Math.min(...words.map((w) => lower.indexOf(w)).filter((i) => i >= 0), Infinity);
  const start = first === Infinity ? 0 : Math.max(0, first - 80);
  return (start > 0 ? "…" : "") + flat.slice(start, start + SNIPPET_CHARS) + "…";
}

function highlighted(text, words) {
  // Split around query terms and build text nodes + <mark> elements: no HTML is ever parsed.
  const frag = document.createDocumentFragment();
  if (!words.length) { frag.append(text); return frag; }
  const escaped = words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const re = new RegExp(`(${escaped.join("|")})`, "giu");
  text.split(re).forEach((part, i) => {
    if (!part) return;
    if (i % 2 === 1) { const m = document.createElement("mark"); m.textContent = part; frag.append(m); }
    else frag.append(part);
  });
  return frag;
}

function render(hits, query) {
  const words = terms(query);
  $("results").replaceChildren(...hits.map((h, i) => {
    const li = document.createElement("li");
    li.className = "hit";
    li.id = `hit-${i + 1}`;
    li.dataset.id = h.id;
    const head = document.createElement("div");
    head.className = "hit-head";
    const rank = document.createElement("span"); rank.className = "rank"; rank.textContent = `${i + 1}.`;
    const source = document.createElement("span"); source.className = "source"; source.textContent = h.id;
    source.title = h.source || h.id;
    const score = document.createElement("span"); score.className = "score"; score.textContent = `relevance ${h.score.toFixed(2)}`;
    head.append(rank, source, score);
    const snippet = document.createElement("p");
    snippet.className = "snippet";
    snippet.append(highlighted(snippetOf(h.text, words), words));
    li.append(head, snippet);
    const meta = Object.entries(h.metadata || {});
    if (meta.length || (h.source && h.source !== h.id)) {
      const m = document.createElement("div");
      m.className = "meta";
      const parts = meta.slice(0, 6).map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`);
      if (h.source && h.source !== h.id) parts.unshift(`source: ${h.source}`);
      m.textContent = parts.join(" · ");
      li.append(m);
    }
    return li;
  }));
}

document.addEventListener("DOMContentLoaded", () => {
  const q = new URL(location.href).searchParams.get("q");
  if (q) $("query").value = q;
  const submit = () => {
    clearTimeout(timer);
    runSearch();
    if ($("want-answer").checked) runAnswer();
  };
  $("search-form").addEventListener("submit", (e) => { e.preventDefault(); submit(); });
  // The form has several text fields, so Enter does not submit it by itself.
  $("query").addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); submit(); } });
  $("want-answer").addEventListener("change", () => { if (!$("want-answer").checked) hideAnswer(); });
  $("query").addEventListener("input", () => { if (!$("answer-panel").hidden) hideAnswer(); });  // it answered another question
  $("query").addEventListener("input", schedule);
  for (const id of ["k", "mode", "filter-key", "filter-value"]) $(id).addEventListener(id.startsWith("filter") ? "input" : "change", schedule);
  $("collection").addEventListener("change", () => { applyCapabilities(); schedule(); });
  $("api-key").addEventListener("change", () => {
    sessionStorage.setItem("semsearch-key", $("api-key").value);
    $("key-row").hidden = true;
    loadCollections();
  });
  loadCollections();
});

// -- the answer panel -------------------------------------------------------------------
// Answers are asked for on Enter only (a language model is too slow to answer every keystroke),
// streamed as Server-Sent Events over fetch (EventSource cannot POST), and built from text
// nodes and links: the answer quotes documents, so it is never parsed as HTML either.
let askOptions = { llm: false, model: null };

async function loadAskOptions() {
  try {
    askOptions = await api("/ask/options");
    if (askOptions.llm) $("want-answer").checked = true;  // never undo the reader's own choice
    $("answer-toggle").title = askOptions.llm
      ? `Answer with ${askOptions.model || "the server's language model"} when you press Enter`
      : "Answer with the best sentences of the documents when you press Enter";
  } catch (e) {
    $("answer-toggle").hidden = true;  // an older server without /ask
  }
}

function hideAnswer() {
  if (asking) asking.abort();
  $("answer-panel").hidden = true;
}

function citeLink(n, hits) {
  const hit = hits[n - 1];
  const a = document.createElement("a");
  a.className = "cite";
  a.textContent = String(n);
  a.href = "#";
  if (hit) {
    a.title = hit.id;
    a.addEventListener("click", (e) => {
      e.preventDefault();
      const li = [...document.querySelectorAll("#results li.hit")].find((el) => el.dataset.id === hit.id);
      if (li) location.hash = li.id;
    });
  }
  return a;
}

function showAnswerText(text, hits) {
  const frag = document.createDocumentFragment();
  const re = /\[(\d+(?:\s*,\s*\d+)*)\]/g;
  let last = 0;
  for (const m of text.matchAll(re)) {
    frag.append(text.slice(last, m.index), "[");
    m[1].split(",").map((x) => Number(x.trim())).forEach((n, i) => {
      if (i) frag.append(", ");
      frag.append(citeLink(n, hits));
    });
    frag.append("]");
    last = m.index + m[0].length;
  }
  frag.append(text.slice(last));
  $("answer-text").replaceChildren(frag);
}

function parseEvents(buffer, onEvent) {
  // Server-Sent Events: blocks separated by a blank line, "event:" and "data:" fields.
  const blocks = buffer.split("\n\n");
  const rest = blocks.pop();
  for (const block of blocks) {
    let kind = "message", data = "";
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) kind = line.slice(6).trim();
      else if (line.startsWith("data:")) data += line.slice(5).trim();
    }
    if (data) onEvent(kind, JSON.parse(data));
  }
  return rest;
}

async function runAnswer() {
  const query = $("query").value.trim();
  if (asking) asking.abort();
  if (!query || !collections.length) { hideAnswer(); return; }
  const controller = new AbortController();
  asking = controller;
  const panel = $("answer-panel");
  panel.hidden = false;
  panel.classList.remove("refused");
  $("answer-model").textContent = "";
  $("answer-note").textContent = "Reading the documents…";
  $("answer-text").replaceChildren();
  const body = { ...buildRequest(query), stream: true };
  body.question = body.query; delete body.query;
  body.k = Math.min(5, body.k);
  let hits = [], text = "";
  const headers = { "Content-Type": "application/json", Accept: "text/event-stream" };
  if (apiKey()) headers.Authorization = "Bearer " + apiKey();
  try {
    const res = await fetch(`/collections/${encodeURIComponent(current().name)}/ask`,
      { method: "POST", headers, body: JSON.stringify(body), signal: controller.signal });
    if (!res.ok) {
      const data = await res.json().catch(() => ({}));
      if (res.status === 401) $("key-row").hidden = false;
      throw new Error((data.error && data.error.message) || res.statusText);
    }
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done || controller !== asking) break;
      buffer = parseEvents(buffer + decoder.decode(value, { stream: true }), (kind, data) => {
        if (kind === "hits") hits = data.hits;
        else if (kind === "token") { text += data.text; showAnswerText(text, hits); $("answer-note").textContent = ""; }
        else if (kind === "answer") finishAnswer(data);
        else if (kind === "error") throw new Error(data.error.message);
      });
    }
  } catch (e) {
    if (e.name !== "AbortError" && controller === asking) $("answer-note").textContent = "No answer: " + e.message;
  }
}

function finishAnswer(data) {
  showAnswerText(data.answer, data.hits);
  $("answer-model").textContent = data.model ? `(${data.model})` : "";
  $("answer-panel").classList.toggle("refused", !data.answered);
  const notes = [];
  if (!data.answered) notes.push("Nothing in these documents answers this well enough.");
  else if (!data.grounded) notes.push("This answer cites none of the documents: check it against them.");
  if (data.removed_citations.length) notes.push(`Removed citations of sources it was not given: ${data.removed_citations.join(", ")}.`);
  $("answer-note").textContent = notes.join(" ");
}
