// The console's behaviour: calls the API's own routes with relative URLs, so the page works wherever the API
// is served. Every value from the API is inserted with textContent, never as HTML: headlines are untrusted.
"use strict";

(() => {
  const KEY_STORAGE = "news-classifier.api-key";
  const byId = (id) => document.getElementById(id);
  let current = null; // the last classification shown, for the feedback form

  // --- talking to the API ---------------------------------------------------------------------------------

  async function callApi(path, body) {
    const headers = {};
    const key = sessionStorage.getItem(KEY_STORAGE);
    if (key) headers["x-api-key"] = key;
    const init = { method: body === undefined ? "GET" : "POST", headers };
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
    refreshTraffic();
  });
})();
