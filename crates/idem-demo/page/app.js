// The checkout page of idem's demo: one Idempotency-Key per payment, sent on
// every press and every retry, replaced only once a final answer came back.
"use strict";

// Retries of one press, counting the first attempt.
const MAX_ATTEMPTS = 8;
// The wait before retrying an answer that never came.
const LOST_RETRY_MS = 1000;
// The longest Retry-After honoured.
const MAX_RETRY_AFTER_S = 10;
// What `slow` asks the server to hold a payment's answer, in seconds.
const SLOW_SECONDS = 3;

const $ = (id) => document.getElementById(id);

// A random UUID; crypto.randomUUID needs a secure context (loopback is one),
// getRandomValues does not.
function newKey() {
  if (crypto.randomUUID) {
    return crypto.randomUUID();
  }
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// The payment being made: its key, and its options once first sent.
let current = null;
let presses = 0;

function startPayment() {
  current = { key: newKey(), query: null, presses: 0 };
  $("key").textContent = current.key;
  $("slow").disabled = false;
  $("lose").disabled = false;
}

// The switches become part of the request (the query, which the fingerprint
// covers) at the first press, and hold for every press of this payment.
function queryOf(payment) {
  if (payment.query === null) {
    const params = new URLSearchParams();
    if ($("slow").checked) params.set("slow", String(SLOW_SECONDS));
    if ($("lose").checked) params.set("lose", "true");
    payment.query = params.toString();
    $("slow").disabled = true;
    $("lose").disabled = true;
  }
  return payment.query;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function retryAfterMs(response) {
  const seconds = Number.parseInt(response.headers.get("Retry-After") || "1", 10);
  const bounded = Number.isFinite(seconds) ? Math.min(Math.max(seconds, 0), MAX_RETRY_AFTER_S) : 1;
  return Math.max(bounded * 1000, 250);
}

function shortKey(key) {
  return key.slice(0, 8);
}

// One line of the answers log; returns a function that fills it in.
function logLine(press, attempt, key) {
  const li = document.createElement("li");
  li.dataset.press = String(press);
  li.dataset.key = key;
  li.dataset.outcome = "sending";
  const who = document.createElement("span");
  who.className = "press";
  who.textContent = `press ${press}` + (attempt > 1 ? ` · try ${attempt}` : "");
  const chip = document.createElement("code");
  chip.className = "chip";
  chip.textContent = `${shortKey(key)}…`;
  chip.title = `Idempotency-Key ${key}`;
  const badge = document.createElement("span");
  badge.className = "badge sending";
  badge.textContent = "sending";
  const text = document.createElement("span");
  text.textContent = "…";
  li.append(who, chip, badge, text);
  $("answers").append(li);
  $("no-answers").classList.add("hidden");
  return (outcome, label, detail, final) => {
    li.dataset.outcome = outcome;
    li.dataset.final = String(final);
    badge.className = `badge ${outcome}`;
    badge.textContent = label;
    text.textContent = detail;
  };
}

async function problemText(response) {
  try {
    const doc = await response.json();
    return doc.detail || doc.title || "";
  } catch {
    return "";
  }
}

// One press: send, and retry what may be retried (no answer, 409, 502, 503,
// 504) with the same key, until a final answer.
async function press(payment) {
  const n = ++presses;
  const first = ++payment.presses === 1;
  const url = "/payments" + (queryOf(payment) ? `?${queryOf(payment)}` : "");
  const body = JSON.stringify({
    amount: $("amount").value.trim(),
    currency: $("currency").value,
    recipient: $("recipient").value.trim(),
  });
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const show = logLine(n, attempt, payment.key);
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json", "Idempotency-Key": payment.key },
        body,
      });
    } catch {
      show("lost", "lost", `no answer; retrying in ${LOST_RETRY_MS / 1000} s`, false);
      await sleep(LOST_RETRY_MS);
      continue;
    }
    const status = response.status;
    if (status === 409 || status === 502 || status === 503 || status === 504) {
      const wait = retryAfterMs(response);
      const outcome = status === 409 ? "in-flight" : "lost";
      const label = status === 409 ? "in flight" : "lost";
      const why = status === 409 ? "this key is still being paid" : await problemText(response);
      show(outcome, label, `${status} · ${why}; retrying in ${wait / 1000} s`, false);
      await sleep(wait);
      continue;
    }
    if (response.ok) {
      const paid = await response.json();
      const replayed = response.headers.get("Idempotent-Replayed") === "true";
      let why = replayed ? "the stored answer" : "the payment was made now";
      if (replayed && first && attempt === 1) {
        // Nobody else sent this key: the first answer was lost, and the
        // browser resent the request on its own (it does so when a reused
        // connection closes without an answer).
        why = "the first answer was lost and the browser resent the request by itself";
      }
      show(
        replayed ? "replay" : "fresh",
        replayed ? "replay" : "fresh",
        `${status} · ${paid.id.slice(0, 12)}… · ${paid.amount} ${paid.currency} · ${why}`,
        true,
      );
    } else if (status >= 400 && status < 500) {
      show("refused", "refused", `${status} · ${await problemText(response)}`, true);
    } else {
      show("failed", "failed", `${status} · ${await problemText(response)}`, true);
    }
    return finish(payment);
  }
  const show = logLine(n, MAX_ATTEMPTS, payment.key);
  show("failed", "gave up", `no final answer after ${MAX_ATTEMPTS} tries; the key is kept`, false);
}

// A final answer came: the next payment gets a new key (once, however many
// presses of this one are still answered), and the list is read again.
async function finish(payment) {
  if (current === payment) {
    startPayment();
  }
  await refreshPayments();
}

async function refreshPayments() {
  let payments;
  try {
    const response = await fetch("/payments", { headers: { Accept: "application/json" } });
    if (!response.ok) return;
    payments = await response.json();
  } catch {
    return;
  }
  const rows = payments.map((p) => {
    const tr = document.createElement("tr");
    tr.dataset.key = p.idempotency_key;
    tr.dataset.id = p.id;
    const cells = [
      p.id,
      `${p.amount} ${p.currency}`,
      p.recipient,
      p.idempotency_key,
      p.created_at.replace("T", " ").replace(/\.\d+/, ""),
    ];
    cells.forEach((text, i) => {
      const td = document.createElement("td");
      if (i === 0 || i === 3) {
        const code = document.createElement("code");
        code.textContent = i === 0 ? text : `${shortKey(text)}…`;
        code.title = text;
        td.append(code);
      } else {
        td.textContent = text;
      }
      if (i === 1) td.className = "amount-cell";
      tr.append(td);
    });
    return tr;
  });
  $("payments").tBodies[0].replaceChildren(...rows);
  $("count").textContent = String(payments.length);
  $("no-payments").classList.toggle("hidden", payments.length > 0);
}

document.addEventListener("DOMContentLoaded", () => {
  startPayment();
  $("form").addEventListener("submit", (event) => {
    event.preventDefault();
    press(current);
  });
  refreshPayments();
});
