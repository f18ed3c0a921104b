// The semsearch search page: search as you type (debounced, stale requests cancelled), and the
// views that answer.js (the answer panel) and explore.js (more like this, topics) add.
// Every piece of server text goes through textContent, never innerHTML, so documents
// containing markup are shown as text and cannot run script.
"use strict";

const $ = (id) => document.getElementById(id);
const DEBOUNCE_MS = 180;
const SNIPPET_CHARS = 320;
let collections = [];
let timer = null;
let inflight = null;
let searched = null;  // what #results shows: { key, status } (kept while another view is open)
let view = { name: "search" };  // the view on screen; see viewOf()

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

function collectionPath(endpoint) { return `/collections/${encodeURIComponent(current().name)}/${endpoint}`; }

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
    if (collections.length) show(viewOf(new URL(location.href)));
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

function filterOf() {
  // The metadata filter of the controls, or undefined: every view (search, similar, topics) applies it.
  const key = $("filter-key").value.trim();
  if (!key || $("filter-key").disabled || !$("filter-value").value.trim()) return undefined;
  return { [key]: filterValue($("filter-value").value) };
}

function buildRequest(query) {
  const body = { query, k: Number($("k").value) };
  const c = current();
  if (c && c.search_options.includes("mode")) body.mode = $("mode").value;
  const where = filterOf();
  if (where) body.where = where;
  return body;
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(runSearch, DEBOUNCE_MS);
}

function searchKey(query) { return JSON.stringify([current() && current().name, buildRequest(query)]); }

async function runSearch() {
  const query = $("query").value.trim();
  if (view.name === "search") history.replaceState(history.state, "", urlFor(view));
  if (inflight) inflight.abort();
  if (!query || !collections.length) { $("results").replaceChildren(); searched = null; setStatus(""); return; }
  const controller = new AbortController();
  inflight = controller;
  const key = searchKey(query);
  try {
    const started = performance.now();
    const data = await api(collectionPath("search"), buildRequest(query), controller.signal);
    if (controller !== inflight) return;
    const { hits, no_good_match: noGoodMatch } = data.results[0];
    const words = terms(query);
    $("results").replaceChildren(...hits.map((h, i) => docCard(h, { rank: i + 1, anchor: `hit-${i + 1}`, words })));
    const took = `${hits.length} result${hits.length === 1 ? "" : "s"} in ${Math.round(performance.now() - started)} ms`;
    searched = { key, status: noGoodMatch ? `No good match: nothing in this collection answers that well (${took}; the closest shown)` : took };
    if (view.name === "search") setStatus(searched.status);
  } catch (e) {
    if (e.name !== "AbortError" && view.name === "search") setStatus(e.message, true);
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

function snippetOf(text, words, chars = SNIPPET_CHARS) {
  const flat = text.replace(/\s+/g, " ").trim();
  if (flat.length <= chars) return flat;
  const lower = flat.toLowerCase();
  const first = Math.min(...words.map((w) => lower.indexOf(w)).filter((i) => i >= 0), Infinity);
  const start = first === Infinity ? 0 : Math.max(0, first - 80);
  return (start > 0 ? "…" : "") + flat.slice(start, start + chars) + "…";
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

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

function docCard(doc, { rank, score, scoreLabel = "relevance", words = [], anchor, more = true } = {}) {
  // One document (a hit, or a document read by id) as a list item: id, score, snippet, metadata,
  // and a "More like this" link to the documents nearest to it.
  const li = element("li", "hit");
  if (anchor) li.id = anchor;
  li.dataset.id = doc.id;
  const head = element("div", "hit-head");
  if (rank !== undefined) head.append(element("span", "rank", `${rank}.`));
  const source = element("span", "source", doc.id);
  source.title = doc.source || doc.id;
  head.append(source);
  if (score !== undefined || doc.score !== undefined) {
    head.append(element("span", "score", `${scoreLabel} ${(score ?? doc.score).toFixed(2)}`));
  }
  const snippet = element("p", "snippet");
  snippet.append(highlighted(snippetOf(doc.text, words), words));
  li.append(head, snippet);
  const meta = Object.entries(doc.metadata || {});
  if (meta.length || (doc.source && doc.source !== doc.id)) {
    const parts = meta.slice(0, 6).map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`);
    if (doc.source && doc.source !== doc.id) parts.unshift(`source: ${doc.source}`);
    li.append(element("div", "meta", parts.join(" · ")));
  }
  if (more) {
    const link = element("a", "more", "More like this");
    link.href = urlFor({ name: "similar", id: doc.id });
    link.setAttribute("aria-label", `More like this: documents like ${doc.id}`);
    link.addEventListener("click", (e) => {
      if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;  // a new tab or window: the link's own URL
      e.preventDefault();
      go({ name: "similar", id: doc.id });
    });
    const actions = element("div", "hit-actions");
    actions.append(link);
    li.append(actions);
  }
  return li;
}

// -- views ------------------------------------------------------------------------------
// The search results, "more like this" (?similar=ID), the topics (?topics=1) and one topic
// (?topic=N) are URLs pushed onto the browser's history, so its Back button and the page's
// return the reader to where they were, and a view can be bookmarked or opened in a new tab.
function viewOf(url) {
  const p = url.searchParams;
  const n = p.get("n") || "";
  if (p.has("similar")) return { name: "similar", id: p.get("similar") };
  if (p.has("topic") && /^\d+$/.test(p.get("topic"))) return { name: "topic", topic: Number(p.get("topic")), n };
  if (p.has("topics")) return { name: "topics", n };
  return { name: "search" };
}

function urlFor(target) {
  const url = new URL(location.pathname, location.href);
  const query = $("query").value.trim();
  if (query) url.searchParams.set("q", query);
  if (target.name === "similar") url.searchParams.set("similar", target.id);
  if (target.name === "topics") url.searchParams.set("topics", "1");
  if (target.name === "topic") url.searchParams.set("topic", String(target.topic));
  if ((target.name === "topics" || target.name === "topic") && target.n) url.searchParams.set("n", target.n);
  return url;
}

function go(target, replace) {
  // Show another view; the history entry remembers how to name the one left, for the Back button.
  if (replace) history.replaceState(history.state, "", urlFor(target));
  else history.pushState({ depth: ((history.state && history.state.depth) || 0) + 1, back: describeView(view) }, "", urlFor(target));
  show(target, true);
}

function goBack() {
  if (history.state && history.state.depth > 0) history.back();
  else go({ name: "search" }, true);
}

function show(target, moveFocus) {
  const left = view;
  view = target;
  clearTimeout(timer);
  const exploring = target.name !== "search";
  $("results").hidden = exploring;
  $("answer-panel").classList.toggle("away", exploring);
  $("explore-head").hidden = $("explore-list").hidden = !exploring;
  $("view-search").setAttribute("aria-pressed", String(!exploring));
  $("view-topics").setAttribute("aria-pressed", String(target.name === "topics" || target.name === "topic"));
  $("back").textContent = `← Back to ${(history.state && history.state.back) || "search"}`;
  if (!exploring) {
    stopExploring();
    showSearch(left, moveFocus);
    return;
  }
  showExplored(target);  // sets the title before its first request
  if (moveFocus) $("explore-title").focus();
}

function showSearch(left, moveFocus) {
  const query = $("query").value.trim();
  if (searched && query && searched.key === searchKey(query)) {
    setStatus(searched.status);  // the results are still there: no need to search again
    history.replaceState(history.state, "", urlFor(view));
  } else {
    runSearch();
  }
  if (moveFocus && left.name === "similar") {
    // Back on the results: focus the link that was followed, so the keyboard continues from it.
    const link = [...$("results").querySelectorAll("li.hit")].find((li) => li.dataset.id === left.id);
    if (link) link.querySelector("a.more").focus();
  }
}

function refresh() {
  // A control changed (collection, mode, k, filter): the view on screen follows it.
  if (view.name === "search") { schedule(); return; }
  clearTimeout(timer);
  timer = setTimeout(() => showExplored(view), DEBOUNCE_MS * 2);
}

document.addEventListener("DOMContentLoaded", () => {
  const url = new URL(location.href);
  const q = url.searchParams.get("q");
  if (q) $("query").value = q;
  view = viewOf(url);
  const submit = () => {
    clearTimeout(timer);
    if (view.name !== "search") go({ name: "search" });  // which searches unless its results are still there
    else runSearch();
    if ($("want-answer").checked) runAnswer();
  };
  $("search-form").addEventListener("submit", (e) => { e.preventDefault(); submit(); });
  // The form has several text fields, so Enter does not submit it by itself.
  $("query").addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); submit(); } });
  $("want-answer").addEventListener("change", () => { if (!$("want-answer").checked) hideAnswer(); });
  $("query").addEventListener("input", () => { if (!$("answer-panel").hidden) hideAnswer(); });  // it answered another question
  $("query").addEventListener("input", () => {
    if (view.name !== "search") go({ name: "search" });  // typing a query means searching again
    schedule();
  });
  for (const id of ["k", "mode", "filter-key", "filter-value"]) $(id).addEventListener(id.startsWith("filter") ? "input" : "change", refresh);
  $("collection").addEventListener("change", () => {
    applyCapabilities();
    // Another collection holds other documents: only the search and its topics carry over.
    if (view.name === "similar" || view.name === "topic") go({ name: view.name === "topic" ? "topics" : "search", n: view.n }, true);
    else refresh();
  });
  $("api-key").addEventListener("change", () => {
    sessionStorage.setItem("semsearch-key", $("api-key").value);
    $("key-row").hidden = true;
    loadCollections();
  });
  $("view-search").addEventListener("click", () => { if (view.name !== "search") go({ name: "search" }); });
  $("view-topics").addEventListener("click", () => { forgetTopics(); go({ name: "topics", n: $("topic-count").value }); });
  $("topic-count").addEventListener("change", () => go({ name: "topics", n: $("topic-count").value }, true));
  $("back").addEventListener("click", goBack);
  document.addEventListener("keydown", (e) => {
    // Escape leaves a view (but not while typing in a field, where it has its own meaning).
    if (e.key === "Escape" && view.name !== "search" && !e.target.closest("input, select, textarea")) goBack();
  });
  window.addEventListener("popstate", () => {
    const url = new URL(location.href);
    $("query").value = url.searchParams.get("q") || "";
    show(viewOf(url), true);
  });
  loadCollections();
});
