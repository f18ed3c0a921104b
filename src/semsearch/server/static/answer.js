// The answer panel of the semsearch page (loaded after app.js, whose helpers it uses).
"use strict";

// -- the answer panel -------------------------------------------------------------------
// Answers are asked for on Enter only (a language model is too slow to answer every keystroke),
// streamed as Server-Sent Events over fetch (EventSource cannot POST), and built from text
// nodes and links: the answer quotes documents, so it is never parsed as HTML either.
let askOptions = { llm: false, model: null };
let asking = null;  // AbortController of the answer being streamed

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
