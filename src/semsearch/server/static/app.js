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
  $("search-form").addEventListener("submit", (e) => { e.preventDefault(); clearTimeout(timer); runSearch(); });
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
