// "More like this" and the topics of a collection, for the semsearch page (loaded after app.js,
// whose helpers it uses). Like the rest of the page, document text only ever goes into text
// nodes: it is never parsed as HTML.
"use strict";

const TOPIC_IDS = 50;  // documents asked for per topic: a topic's own view lists this many, most central first
const CENTRAL_SHOWN = 3;  // central documents quoted under each topic
const CENTRAL_CHARS = 160;
const GET_BATCH = 100;  // ids per /get request (a server takes up to 1000 by default)
let exploring = null;  // AbortController of the requests of the view on screen
let topicsLoaded = null;  // the topics last asked for: { key, topics, docs: Map(id -> document), tookMs }

function stopExploring() {
  if (exploring) exploring.abort();
  exploring = null;
}

function forgetTopics() { topicsLoaded = null; }  // the Topics button asks afresh: documents may have changed

function describeView(v) {
  // How the Back button names a view.
  if (v.name === "similar") return `documents like ${v.id}`;
  if (v.name === "topics") return "topics";
  if (v.name === "topic") {
    const topic = topicsLoaded && topicsLoaded.topics.find((t) => t.id === v.topic);
    return topic ? `topic “${topic.label}”` : "the topic";
  }
  return "search results";
}

function showExplored(target) {
  if (!collections.length) return undefined;
  if (target.name === "similar") return showSimilar(target.id);
  if (target.name === "topics") return showTopics(target.n);
  return showTopic(target.n, target.topic);
}

function startExplore(title) {
  stopExploring();
  exploring = new AbortController();
  $("explore-title").textContent = title;
  setNote();
  $("explore-lead").replaceChildren();
  $("explore-list").replaceChildren();
  $("explore-list").className = "explore-list";
  $("topic-count-row").hidden = true;
  return exploring;
}

function filterText() {
  const where = filterOf();
  if (!where) return "";
  const [[key, value]] = Object.entries(where);
  return `Only documents where ${key} = ${typeof value === "string" ? value : JSON.stringify(value)} (the filter above).`;
}

function setNote(...parts) {
  // The line under a view's title: text, and the assign hint when it applies.
  const note = $("explore-note");
  note.replaceChildren();
  for (const part of parts.filter(Boolean)) note.append(note.childNodes.length ? " " : "", part);
}

function assignHint() {
  const hint = document.createDocumentFragment();
  hint.append("To filter searches by topic, write the topics into the documents' metadata with ",
    element("code", "", "semsearch topics --assign"),
    " (for the same number of topics as here); each topic then offers “Search in this topic”.");
  return hint;
}

function failed(controller, e) {
  if (e.name !== "AbortError" && controller === exploring) setStatus(e.message, true);
}

function plural(n, word) { return `${n.toLocaleString()} ${word}${n === 1 ? "" : "s"}`; }

function followLink(text, target, className) {
  // A real link (it opens in a new tab too) that, clicked plainly, shows its view in this page.
  const link = element("a", className, text);
  link.href = urlFor(target);
  link.addEventListener("click", (e) => {
    if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    go(target);
  });
  return link;
}

async function fetchDocuments(ids, signal) {
  // Documents by id, in batches the server accepts; ids deleted since are left out.
  const found = new Map();
  for (let i = 0; i < ids.length; i += GET_BATCH) {
    const data = await api(collectionPath("get"), { ids: ids.slice(i, i + GET_BATCH) }, signal);
    for (const doc of data.documents) found.set(doc.id, doc);
  }
  return found;
}

// -- more like this -----------------------------------------------------------------------
async function showSimilar(id) {
  const controller = startExplore(`Documents like ${id}`);
  setNote(filterText());
  setStatus("Finding similar documents…");
  const body = { id, k: Number($("k").value) };
  const where = filterOf();
  if (where) body.where = where;
  try {
    const started = performance.now();
    const [data, origin] = await Promise.all([
      api(collectionPath("similar"), body, controller.signal),
      fetchDocuments([id], controller.signal),
    ]);
    if (controller !== exploring) return;
    if (origin.has(id)) {
      const list = element("ul", "origin");
      list.setAttribute("aria-label", "The document itself");
      list.append(docCard(origin.get(id), { more: false }));
      $("explore-lead").replaceChildren(element("p", "lead-label", "This document:"), list);
    }
    $("explore-list").replaceChildren(...data.hits.map((h, i) => docCard(h, { rank: i + 1, scoreLabel: "similarity" })));
    const n = data.hits.length;
    setStatus(n ? `${plural(n, "document")} like ${id} in ${Math.round(performance.now() - started)} ms`
      : `No other document${where ? " matching the filter" : ""} is like ${id}.`);
  } catch (e) {
    failed(controller, e);
  }
}

// -- topics -------------------------------------------------------------------------------
function topicsKey(n) { return JSON.stringify([current().name, n || null, filterOf() || null]); }

async function loadTopics(n, signal) {
  const key = topicsKey(n);
  if (topicsLoaded && topicsLoaded.key === key) return topicsLoaded;
  const body = { max_ids: TOPIC_IDS };
  if (n) body.n = Number(n);
  const where = filterOf();
  if (where) body.where = where;
  const started = performance.now();
  const data = await api(collectionPath("topics"), body, signal);
  const docs = await fetchDocuments(data.topics.flatMap((t) => t.ids.slice(0, CENTRAL_SHOWN)), signal);
  topicsLoaded = { key, topics: data.topics, docs, tookMs: performance.now() - started };
  return topicsLoaded;
}

function assignedKey(topic, docs) {
  // `semsearch topics --assign` writes each document's topic id under KEY and its label under
  // KEY_label. When every document of this topic read here carries this topic's id and label,
  // KEY filters a search to the topic; when not (never assigned, or assigned from other topics)
  // there is no filter to offer, since search cannot filter on a list of ids.
  const read = topic.ids.map((id) => docs.get(id)).filter(Boolean);
  if (!read.length) return null;
  const keys = Object.keys(read[0].metadata || {});
  return keys.find((k) => read.every((d) => d.metadata[k] === topic.id && d.metadata[`${k}_label`] === topic.label)) || null;
}

function searchInTopicButton(key, topic) {
  const button = element("button", "search-topic", "Search in this topic");
  button.type = "button";
  button.title = `Search only documents whose ${key} is ${topic.id}`;
  button.addEventListener("click", () => {
    $("filter-key").value = key;
    $("filter-value").value = String(topic.id);
    go({ name: "search" });
    $("query").focus();
    if (!$("query").value.trim()) setStatus(`Searching topic “${topic.label}” only (filter ${key} = ${topic.id}): type what you are looking for.`);
  });
  return button;
}

function topicCard(topic, docs, total, n) {
  const li = element("li", "topic");
  li.dataset.topic = String(topic.id);
  const title = element("h3", "topic-title");
  title.append(followLink(topic.label || `Topic ${topic.id}`, { name: "topic", topic: topic.id, n }, "topic-open"));
  const share = total ? Math.round((100 * topic.size) / total) : 0;
  title.append(" ", element("span", "topic-size", `${plural(topic.size, "document")} · ${share}%`));
  // The label is the first few words: list them all only when there are more.
  const words = topic.words.join(", ") === topic.label ? "" : element("p", "topic-words", topic.words.join(", "));
  const central = element("ul", "central");
  central.setAttribute("aria-label", "Its most central documents");
  for (const id of topic.ids.slice(0, CENTRAL_SHOWN)) {
    const doc = docs.get(id);
    if (!doc) continue;
    const item = element("li");
    item.dataset.id = id;
    item.append(element("span", "central-id", id), " ", snippetOf(doc.text, [], CENTRAL_CHARS));
    central.append(item);
  }
  li.append(title, words, central);
  const key = assignedKey(topic, docs);
  if (key) {
    const actions = element("div", "hit-actions");
    actions.append(searchInTopicButton(key, topic));
    li.append(actions);
  }
  return li;
}

function selectTopicCount(n) {
  const select = $("topic-count");
  if (n && ![...select.options].some((o) => o.value === n)) select.append(new Option(n, n));  // from a URL
  select.value = n || "";
}

async function showTopics(n) {
  const controller = startExplore(`Topics of ${current().name}`);
  $("topic-count-row").hidden = false;
  selectTopicCount(n);
  const cached = topicsLoaded && topicsLoaded.key === topicsKey(n);
  setStatus(cached ? "" : "Finding topics: grouping the documents by meaning…");
  try {
    const loaded = await loadTopics(n, controller.signal);
    if (controller !== exploring) return;
    const total = loaded.topics.reduce((sum, t) => sum + t.size, 0);
    $("explore-list").className = "explore-list topics";
    $("explore-list").replaceChildren(...loaded.topics.map((t) => topicCard(t, loaded.docs, total, n)));
    const filterable = loaded.topics.some((t) => assignedKey(t, loaded.docs));
    setNote(filterText(), !filterable && assignHint());
    setStatus(`${plural(loaded.topics.length, "topic")} among ${plural(total, "document")}` +
      (cached ? "" : ` in ${Math.round(loaded.tookMs)} ms`));
  } catch (e) {
    failed(controller, e);
  }
}

async function showTopic(n, topicId) {
  const known = topicsLoaded && topicsLoaded.key === topicsKey(n) && topicsLoaded.topics.find((t) => t.id === topicId);
  const controller = startExplore(known ? `Topic: ${known.label}` : `Topic ${topicId}`);
  setStatus("Reading the topic's documents…");
  try {
    const loaded = await loadTopics(n, controller.signal);
    const topic = loaded.topics.find((t) => t.id === topicId);
    if (!topic) throw new Error(`There is no topic ${topicId} among the ${loaded.topics.length} topics found now: go back to the topics.`);
    const missing = topic.ids.filter((id) => !loaded.docs.has(id));
    for (const [id, doc] of await fetchDocuments(missing, controller.signal)) loaded.docs.set(id, doc);
    if (controller !== exploring) return;
    $("explore-title").textContent = `Topic: ${topic.label}`;
    const key = assignedKey(topic, loaded.docs);
    setNote(`Its most distinctive words: ${topic.words.join(", ")}.`, filterText(), !key && assignHint());
    if (key) $("explore-lead").replaceChildren(searchInTopicButton(key, topic));
    const docs = topic.ids.filter((id) => loaded.docs.has(id)).map((id) => loaded.docs.get(id));
    $("explore-list").replaceChildren(...docs.map((doc, i) => docCard(doc, { rank: i + 1 })));
    setStatus(topic.size > docs.length ? `${plural(topic.size, "document")}; the ${docs.length} most central shown`
      : `${plural(topic.size, "document")}, the most central first`);
  } catch (e) {
    failed(controller, e);
  }
}
