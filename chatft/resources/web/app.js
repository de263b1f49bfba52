// chatft's web page: POST /parse with "explain", POST|DELETE /chat/{id}, GET /version. No build step, no
// dependencies: plain DOM calls. Every failure ends in a readable message in the page, never a blank page.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

function showError(box, message) {
  box.textContent = message;
  box.hidden = !message;
}

// fetch + JSON; throws an Error whose message a person can read (the server's {"error", "detail"} included).
async function api(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new Error(`Cannot reach the chatft server at ${location.origin} (${err.message}). Is "python -m chatft serve" still running?`);
  }
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    throw new Error(`The server answered ${response.status} ${response.statusText} without JSON.`);
  }
  if (!response.ok) {
    const what = data && data.error ? `${data.error}: ${data.detail}` : JSON.stringify(data);
    throw new Error(`The server refused the request (${response.status}) - ${what}`);
  }
  return data;
}

function fmt(p) {
  return (100 * p).toFixed(1) + "%";
}

// Red for positive scores (pushed towards the target), blue for negative, scaled by the row's largest |score|.
function heatColor(score, scale) {
  if (!scale) return "transparent";
  const a = Math.min(1, Math.abs(score) / scale) * 0.85;
  return score >= 0 ? `rgba(229, 57, 53, ${a.toFixed(3)})` : `rgba(30, 136, 229, ${a.toFixed(3)})`;
}

function heatRow(kind, name, words, scores) {
  const scale = Math.max(0, ...scores.map(Math.abs));
  const row = el("div", { class: "heat-row", "data-kind": kind, "data-target": name });
  row.append(el("span", { class: "target", text: `${kind === "intent" ? "intent" : "slot"} ${name}` }));
  const line = el("span", { class: "words" });
  row.append(line);
  words.forEach((word, i) => {
    line.append(
      el("span", {
        class: "heat",
        "data-index": String(i),
        "data-score": String(scores[i]),
        title: `${word}: ${scores[i] >= 0 ? "+" : ""}${scores[i].toFixed(4)}`,
        style: `background: ${heatColor(scores[i], scale)}`,
        text: word,
      }),
      " "
    );
  });
  return row;
}

function slottedText(pred) {
  const box = $("slotted-text");
  box.replaceChildren();
  let at = 0;
  const slots = [...pred.slots].sort((a, b) => a.start - b.start);
  for (const slot of slots) {
    if (slot.start < at) continue;
    box.append(pred.text.slice(at, slot.start));
    box.append(
      el(
        "mark",
        { class: "slot", "data-label": slot.label, "data-start": String(slot.start), "data-end": String(slot.end), title: `${slot.label} = ${slot.value} (${fmt(slot.confidence)})` },
        pred.text.slice(slot.start, slot.end),
        el("span", { class: "slot-type", text: slot.label })
      )
    );
    at = slot.end;
  }
  box.append(pred.text.slice(at));
  if (!slots.length) box.append(el("span", { class: "muted", text: "  (no slots)" }));
}

function render(pred) {
  $("intent-name").textContent = pred.intent === null ? "(none)" : pred.intent;
  $("intent-confidence").textContent = `(${fmt(pred.intent_confidence)})`;
  $("oos-flag").hidden = !pred.out_of_scope;
  $("top-intents").replaceChildren(
    ...pred.intents_top_k.map(([name, p]) => el("li", { "data-intent": name, "data-probability": String(p), text: `${name}  ${fmt(p)}` }))
  );
  slottedText(pred);
  const ex = pred.explanation;
  const maps = $("heatmaps");
  maps.replaceChildren();
  $("method-used").textContent = ex ? `(${ex.method})` : "";
  if (ex && ex.words.length) {
    maps.append(heatRow("intent", ex.intent.name, ex.words, ex.intent.scores));
    for (const slot of ex.slots) maps.append(heatRow("slot", slot.label, ex.words, slot.scores));
  }
  $("result").hidden = false;
}

async function parse(event) {
  event.preventDefault();
  const error = $("parse-error");
  showError(error, "");
  const text = $("utterance").value;
  if (!text.trim()) {
    $("result").hidden = true;
    showError(error, "Type an utterance first: the text is empty.");
    return;
  }
  const explain = { method: $("method").value };
  const intent = $("why-intent").value.trim();
  if (intent) explain.intent = intent;
  $("parse-button").disabled = true;
  try {
    const [pred] = await api("POST", "/parse", { texts: [text], explain });
    render(pred);
  } catch (err) {
    $("result").hidden = true;
    showError(error, err.message);
  } finally {
    $("parse-button").disabled = false;
  }
}

// ---- chat ------------------------------------------------------------------------------------------------
let sessionId = "web-" + Math.random().toString(36).slice(2, 10);

function showState(record) {
  const box = $("chat-state");
  box.replaceChildren();
  const state = record.state;
  box.append(el("div", { id: "state-intent", "data-intent": state.intent === null ? "" : state.intent, text: `intent: ${state.intent === null ? "(none)" : state.intent}` }));
  const table = el("table", { class: "frame", id: "state-frame" }, el("tr", {}, el("th", { text: "slot" }), el("th", { text: "value" })));
  for (const [slot, value] of Object.entries(state.frame)) {
    table.append(el("tr", { "data-slot": slot }, el("td", { text: slot }), el("td", { text: String(value) })));
  }
  box.append(table);
  if (record.missing && record.missing.length) box.append(el("div", { id: "state-missing", text: `missing: ${record.missing.join(", ")}` }));
}

async function send(event) {
  event.preventDefault();
  const error = $("chat-error");
  showError(error, "");
  const input = $("chat-input");
  const text = input.value;
  if (!text.trim()) {
    showError(error, "Type something to say first: the text is empty.");
    return;
  }
  $("chat-send").disabled = true;
  try {
    const record = await api("POST", `/chat/${encodeURIComponent(sessionId)}`, { text });
    const log = $("chat-log");
    log.append(el("div", { class: "turn-user" }, el("span", { text })));
    log.append(
      el("div", { class: "turn-bot", "data-turn": String(record.turn) }, el("span", { text: record.response }),
        el("span", { class: "turn-meta", text: `${record.intent} (${fmt(record.intent_confidence)})` }))
    );
    log.scrollTop = log.scrollHeight;
    showState(record);
    input.value = "";
  } catch (err) {
    showError(error, err.message);
  } finally {
    $("chat-send").disabled = false;
  }
}

async function reset() {
  showError($("chat-error"), "");
  try {
    await api("DELETE", `/chat/${encodeURIComponent(sessionId)}`);
  } catch (err) {
    showError($("chat-error"), err.message);
  }
  sessionId = "web-" + Math.random().toString(36).slice(2, 10);
  $("session-id").textContent = sessionId;
  $("chat-log").replaceChildren();
  $("chat-state").replaceChildren("(no turn yet)");
}

async function modelInfo() {
  try {
    const info = await api("GET", "/version");
    $("model-info").textContent = `${info.backend} model ${info.model} - ${info.intents} intents, ${info.slot_types} slot types`;
    if (info.backend === "onnx") {
      const ig = $("method").querySelector('option[value="integrated_gradients"]');
      ig.disabled = true;
      ig.textContent = "integrated gradients (needs a checkpoint, not ONNX)";
    }
  } catch (err) {
    $("model-info").textContent = err.message;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("session-id").textContent = sessionId;
  $("parse-form").addEventListener("submit", parse);
  $("chat-form").addEventListener("submit", send);
  $("chat-reset").addEventListener("click", reset);
  $("utterance").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) parse(e);
  });
  modelInfo();
});
