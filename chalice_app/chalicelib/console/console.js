// The console's behaviour: calls the API's own routes with relative URLs, so the page works wherever the API
// is served. Every value from the API is inserted with textContent, never as HTML: headlines are untrusted.
"use strict";

(() => {
  const KEY_STORAGE = "news-classifier.api-key";
  const byId = (id) => document.getElementById(id);
  let current = null; // the last classification shown, for the feedback form

  // --- talking to the API ---------------------------------------------------------------------------------

  // `keepalive`: the request may outlive the page (a label saved as the operator leaves).
  async function callApi(path, body, keepalive = false) {
    const headers = {};
    const key = sessionStorage.getItem(KEY_STORAGE);
    if (key) headers["x-api-key"] = key;
    const init = { method: body === undefined ? "GET" : "POST", headers, keepalive };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(new URL(path, document.baseURI), init);
    } catch (error) {
      throw new Error(`The API could not be reached (${error.message}).`);
    }
    const text = await response.text();
    let payload = null;
    try {
      payload = JSON.parse(text);
    } catch {
      payload = null; // reported below with the status
    }
    if (!response.ok) throw new Error(errorMessage(response.status, payload, Boolean(key)));
    if (payload === null) throw new Error(`The API answered HTTP ${response.status} with a body that is not JSON.`);
    return payload;
  }

  // The API's errors are {"error": {"code", "message"}}; API Gateway's own (missing key, throttling) {"message"}.
  function errorMessage(status, payload, sentKey) {
    const message = payload?.error?.message ?? payload?.message;
    const code = payload?.error?.code;
    let text = message ? `${message} (${code ? `${code}, ` : ""}HTTP ${status})` : `The API answered HTTP ${status}.`;
    if (status === 403 && !sentKey) text += " This stage needs an API key: enter it above.";
    return text;
  }

  // --- small DOM helpers ----------------------------------------------------------------------------------

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function showError(node, message) {
    node.textContent = message;
    node.hidden = false;
  }

  function clearError(node) {
    node.textContent = "";
    node.hidden = true;
  }

  const percent = (score) => `${(score * 100).toFixed(1)}%`;
  const milliseconds = (ms) => `${Number(ms).toFixed(0)} ms`;
  const byScore = (scores) => Object.entries(scores).sort((a, b) => b[1] - a[1]);

  // The button is disabled while its request runs, so a double click sends one request.
  async function whileBusy(button, task) {
    button.disabled = true;
    try {
      return await task();
    } finally {
      button.disabled = false;
    }
  }

  // --- classify and feedback ------------------------------------------------------------------------------

  function scoreRow(label, score, isTop) {
    const row = element("li", isTop ? "score top" : "score");
    row.dataset.label = label;
    const bar = element("span", "bar");
    bar.setAttribute("aria-hidden", "true");
    const fill = element("span", "fill");
    fill.style.width = percent(score);
    bar.append(fill);
    row.append(element("span", "score-name", label), bar, element("span", "score-value", percent(score)));
    return row;
  }

  function showResult(result) {
    current = result;
    const ranked = byScore(result.scores);
    byId("result-label").textContent = result.label;
    byId("result-uncertain").hidden = result.uncertain !== true;
    byId("scores").replaceChildren(...ranked.map(([label, score]) => scoreRow(label, score, label === result.label)));
    byId("result-latency").textContent = milliseconds(result.latency_ms);
    byId("result-id").textContent = result.request_id;
    byId("result-model").textContent = result.model_version;
    byId("feedback-label").replaceChildren(...ranked.map(([label]) => {
      const option = element("option", "", label);
      option.value = label;
      option.selected = label === result.label;
      return option;
    }));
    byId("feedback-status").textContent = "";
    byId("result").hidden = false;
  }

  async function classify(event) {
    event.preventDefault();
    const errors = byId("classify-error");
    clearError(errors);
    try {
      const result = await whileBusy(byId("classify-button"),
        () => callApi("classify", { headline: byId("headline").value }));
      showResult(result);
    } catch (error) {
      byId("result").hidden = true;
      showError(errors, error.message);
      return;
    }
    await refreshTraffic();
  }

  async function sendFeedback(event) {
    event.preventDefault();
    if (current === null) return;
    const status = byId("feedback-status");
    const errors = byId("classify-error");
    clearError(errors);
    status.textContent = "";
    try {
      const path = `transactions/${encodeURIComponent(current.request_id)}/feedback`;
      const record = await whileBusy(byId("feedback-button"),
        () => callApi(path, { label: byId("feedback-label").value }));
      status.textContent = `Feedback stored: the true label of this headline is ${record.feedback_label}.`;
    } catch (error) {
      showError(errors, error.message);
      return;
    }
    await refreshTraffic();
  }

  // --- recent traffic -------------------------------------------------------------------------------------

  function cell(text, className) {
    return element("td", className, text);
  }

  // created_at is "YYYY-MM-DDTHH:MM:SS.ffffff+0000": show the day and the second, in UTC as stored.
  const shortTime = (createdAt) => `${createdAt.slice(5, 10)} ${createdAt.slice(11, 19)}`;

  function trafficRow(record) {
    const row = element("tr");
    row.dataset.requestId = record.request_id;
    const headline = cell(record.headline, "headline");
    headline.dir = "auto";
    const top = record.scores ? Math.max(...Object.values(record.scores)) : null;
    const failed = record.status !== "ok";
    row.append(
      cell(shortTime(record.created_at), "time"),
      headline,
      cell(record.label ?? "—"),
      cell(top === null ? "—" : percent(top) + (record.uncertain ? " uncertain" : ""),
        record.uncertain ? "number uncertain" : "number"),
      cell(milliseconds(record.latency_ms), "number"),
      cell(failed ? `${record.status}: ${record.error_code}` : "ok", failed ? "status-error" : ""),
      cell(record.feedback_label ?? ""),
    );
    return row;
  }

  function labelCount(label, count) {
    const item = element("li", "", label);
    item.append(element("span", "count", String(count)));
    return item;
  }

  async function refreshTraffic(event) {
    event?.preventDefault();
    const errors = byId("traffic-error");
    try {
      const traffic = await callApi(`transactions?limit=${encodeURIComponent(byId("traffic-limit").value)}`);
      clearError(errors);
      const shown = traffic.transactions.length;
      byId("traffic-summary").textContent = shown === 0 ? "No requests today or yesterday."
        : `The last ${shown} request${shown === 1 ? "" : "s"}; labels given in this window:`;
      byId("label-counts").replaceChildren(
        ...Object.entries(traffic.label_counts).map(([label, count]) => labelCount(label, count)));
      byId("traffic-rows").replaceChildren(...traffic.transactions.map(trafficRow));
    } catch (error) {
      showError(errors, error.message);
    }
  }

  // --- review: label the uncertain answers one headline at a time, by keyboard ------------------------------

  const REVIEW_LIMIT = 100; // entries per listing: the API's maximum
  const IDS_PER_CALL = 100; // request ids per POST /review/labels: the API's maximum
  // `pending` is the last decision ({entry, label}, label null for a skip), held here until the next one so that
  // `u` takes it back without touching the store (where the first label stands); every decision before it is sent.
  // `sending` chains the calls, so decisions are stored, and reported, in the order they were made.
  const review = { entries: [], position: 0, full: false, pending: null, skipped: new Set(),
    sending: Promise.resolve() };
  const entryKey = (entry) => entry.request_ids[0];
  // Sorted, so that a key means the same label on every headline whatever its scores.
  const labelNames = (entry) => Object.keys(entry.scores).sort();

  async function loadReview(event) {
    event?.preventDefault();
    const errors = byId("review-error");
    clearError(errors);
    await flushDecision();
    try {
      const days = encodeURIComponent(byId("review-days").value);
      const queue = await whileBusy(byId("review-start"), () => callApi(`review?limit=${REVIEW_LIMIT}&days=${days}`));
      review.entries = queue.entries.filter((entry) => !review.skipped.has(entryKey(entry)));
      review.full = queue.entries.length === REVIEW_LIMIT;
      review.position = 0;
    } catch (error) {
      byId("review-card").hidden = true;
      showError(errors, error.message);
      return;
    }
    byId("review-card").hidden = false;
    showEntry();
    byId("review-card").focus();
  }

  function showEntry() {
    const left = review.entries.length - review.position;
    const skipped = review.skipped.size ? `; ${review.skipped.size} skipped` : "";
    byId("review-left").textContent = `${left} left${review.full ? " in this batch, more after it" : ""}${skipped}`;
    const entry = review.entries[review.position];
    byId("review-entry").hidden = entry === undefined;
    byId("review-done").hidden = entry !== undefined;
    if (entry === undefined) {
      byId("review-done").textContent = review.pending ? "This batch is done. Enter saves the last decision and "
        + "loads more; u undoes it." : "Nothing left to review in this window. Enter looks again.";
      return;
    }
    byId("review-headline").textContent = entry.headline;
    byId("review-model-label").textContent = entry.label;
    byId("review-margin").textContent = percent(entry.margin);
    const sent = entry.request_ids.length;
    byId("review-requests").textContent = sent === 1 ? "sent once" : `sent ${sent} times, all labelled at once`;
    byId("review-scores").replaceChildren(
      ...byScore(entry.scores).map(([label, score]) => scoreRow(label, score, label === entry.label)));
    byId("review-labels").replaceChildren(...labelNames(entry).map((label, i) => {
      const button = element("button", "", `${i + 1} ${label}`);
      button.type = "button";
      button.dataset.label = label;
      button.addEventListener("click", () => decide(label));
      return button;
    }));
  }

  async function decide(label) {
    const entry = review.entries[review.position];
    if (entry === undefined) return;
    const previous = review.pending;
    review.pending = { entry, label };
    review.position += 1;
    byId("review-status").textContent = label === null ? "Skipped." : `${label}: saved when you go on.`;
    showEntry();
    byId("review-card").focus();
    if (previous) await queueSend(previous);
  }

  function undo() {
    const status = byId("review-status");
    if (review.pending === null) {
      status.textContent = "Nothing to undo: only the last decision can be taken back, and it is already saved.";
      return;
    }
    review.pending = null;
    review.position -= 1;
    status.textContent = "Undone.";
    showEntry();
  }

  // Leaving the page sends at once (the chain may not get its turn before the page is gone), with keepalive.
  async function flushDecision(leaving = false) {
    const decision = review.pending;
    review.pending = null;
    if (decision) await (leaving ? send(decision, true) : queueSend(decision));
  }

  function queueSend(decision) {
    review.sending = review.sending.then(() => send(decision));
    return review.sending;
  }

  // One label for every request id of the entry, first-wins: ids that already had feedback are reported.
  async function send(decision, keepalive = false) {
    const { entry, label } = decision;
    if (label === null) {
      review.skipped.add(entryKey(entry));
      return;
    }
    const ids = entry.request_ids;
    try {
      const refused = [];
      for (let start = 0; start < ids.length; start += IDS_PER_CALL) {
        const answer = await callApi("review/labels", { label, request_ids: ids.slice(start, start + IDS_PER_CALL) },
          keepalive);
        refused.push(...answer.refused);
      }
      const kept = refused.length ? ` (${refused.length} kept an earlier label: ${refused[0].message})` : "";
      byId("review-status").textContent = `Saved ${label} for “${entry.headline}”${kept}.`;
    } catch (error) {
      showError(byId("review-error"), `“${entry.headline}” was not labelled ${label}: ${error.message}`);
    }
  }

  function reviewKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    if (event.target.closest("select, input, textarea")) return;
    const entry = review.entries[review.position];
    let action = null;
    if (entry !== undefined && /^[1-9]$/.test(event.key)) {
      const label = labelNames(entry)[Number(event.key) - 1];
      if (label !== undefined) action = () => decide(label);
    } else if (entry !== undefined && event.key === "s") {
      action = () => decide(null);
    } else if (event.key === "u") {
      action = undo;
    } else if (entry === undefined && event.key === "Enter") {
      action = loadReview;
    }
    if (action !== null) {
      event.preventDefault();
      action();
    }
  }

  // --- wiring ---------------------------------------------------------------------------------------------

  function rememberKey() {
    const key = byId("api-key").value.trim();
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  }

  function submitOnEnter(event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      byId("classify-form").requestSubmit();
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    byId("api-key").value = sessionStorage.getItem(KEY_STORAGE) ?? "";
    byId("api-key").addEventListener("input", rememberKey);
    byId("api-key").addEventListener("change", () => refreshTraffic());
    byId("headline").addEventListener("keydown", submitOnEnter);
    byId("classify-form").addEventListener("submit", classify);
    byId("feedback-form").addEventListener("submit", sendFeedback);
    byId("traffic-form").addEventListener("submit", refreshTraffic);
    byId("review-form").addEventListener("submit", loadReview);
    byId("review-card").addEventListener("keydown", reviewKey);
    byId("review-skip").addEventListener("click", () => decide(null));
    byId("review-undo").addEventListener("click", () => {
      undo();
      byId("review-card").focus();
    });
    window.addEventListener("pagehide", () => flushDecision(true)); // the last label is not lost with the page
    refreshTraffic();
  });
})();
