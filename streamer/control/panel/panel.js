// The control panel: a client of the control API. It sends commands and renders the status stream;
// no pipeline logic lives here. The token is typed once (or given as #token=… in the URL, never in a
// query string), kept in sessionStorage, and sent as a Bearer header with every request.
"use strict";

const KEY = "streamer-token";
const CLASSES = { "-1": "held 待审", 0: "operator 主播", 1: "paid 付费", 2: "question 提问", 3: "danmaku 弹幕", 4: "idle" };
const $ = (id) => document.getElementById(id);
let token = "";
let shortcuts = {};
let last = {};
let streamAbort = null;

function takeTokenFromFragment() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    sessionStorage.setItem(KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname);  // the token does not stay in the address bar
  }
}

function headers() {
  return { Authorization: "Bearer " + token, "Content-Type": "application/json" };
}

function showLogin(message) {
  if (streamAbort) streamAbort.abort();
  $("panel").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("token").focus();
}

async function api(method, path, body) {
  const r = await fetch(path, { method, headers: headers(), body: body === undefined ? undefined : JSON.stringify(body) });
  if (r.status === 401) {
    sessionStorage.removeItem(KEY);
    showLogin("Wrong token 令牌错误: the server refused it.");
    throw new Error("unauthorized");
  }
  const data = await r.json().catch(() => ({}));
  $("error").textContent = r.ok ? "" : `${method} ${path}: ${data.error || r.status}`;
  return data;
}

async function login(candidate) {
  token = candidate;
  let r;
  try {
    r = await fetch("/api/status", { headers: headers() });
  } catch (e) {
    showLogin("Cannot reach the control server 无法连接: is streamer running?");
    return;
  }
  if (r.status === 401) {
    sessionStorage.removeItem(KEY);
    showLogin("Wrong token 令牌错误: check the token printed by streamer run.");
    return;
  }
  sessionStorage.setItem(KEY, token);
  $("login").hidden = true;
  $("panel").hidden = false;
  const settings = await api("GET", "/api/panel");
  shortcuts = settings.shortcuts || {};
  document.querySelectorAll("kbd[data-key]").forEach((k) => { k.textContent = shortcuts[k.dataset.key] || ""; });
  render(await r.json());
  follow();
  previewLoop();
}

// ------------------------------------------------------------------ the status stream (SSE over fetch)
async function follow() {
  let delay = 500;
  for (;;) {
    streamAbort = new AbortController();
    try {
      const r = await fetch("/api/events", { headers: headers(), signal: streamAbort.signal });
      if (r.status === 401) { showLogin("Wrong token 令牌错误"); return; }
      setConn(true);
      delay = 500;
      const reader = r.body.getReader();
      const decoder = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const chunk = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = chunk.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
          if (data) render(JSON.parse(data));
        }
      }
    } catch (e) {
      if (streamAbort.signal.aborted) return;
    }
    setConn(false);
    await new Promise((ok) => setTimeout(ok, delay));
    delay = Math.min(delay * 2, 10000);
  }
}

function setConn(up) {
  $("conn").textContent = up ? "live 在线" : "reconnecting 重连中…";
  $("conn").className = "badge " + (up ? "ok" : "bad");
}

// ------------------------------------------------------------------ rendering (textContent only: viewer text is untrusted)
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function button(label, cls, onclick) {
  const b = el("button", label, cls);
  b.addEventListener("click", onclick);
  return b;
}

function render(s) {
  last = s;
  $("fps").textContent = s.fps ?? "–";
  $("av").textContent = s.av_offset_ms ?? s.mic_latency_ms ?? "–";
  $("ticks").textContent = s.ticks ?? "–";
  $("paid-pending").textContent = s.paid_pending ?? 0;
  $("paid-failed").textContent = s.paid_failed ?? 0;
  $("paused-badge").hidden = !s.paused;
  $("muted-badge").hidden = !s.muted;
  const mic = s.operator_mic;
  $("talk-btn").hidden = !mic || mic.mode !== "push_to_talk";
  $("talk-btn").classList.toggle("active", Boolean(mic && mic.talking));
  $("pause-btn").firstChild.textContent = s.paused ? "Resume 继续 " : "Pause 暂停 ";
  $("mute-btn").firstChild.textContent = s.muted ? "Unmute 取消静音 " : "Mute mic 静音 ";
  $("persona-now").textContent = s.persona || "–";
  $("speaking").textContent = s.speaking || "–";
  const authors = (s.authors || []).map((a) => a.name).join(", ");
  $("answering").textContent = authors || s.answering || "–";
  if (document.activeElement !== $("approval")) $("approval").checked = !!s.approval;
  renderQueue(s.queue_items || []);
  renderSinks(s.sinks || {});
  renderSources(s.sources || []);
  fillSelect($("persona"), s.personas || [], s.persona);
  fillSelect($("product-id"), s.products || [], s.product && s.product.id);
  renderActions(s.actions || []);
  renderOverlays(s.overlays || []);
}

function renderQueue(items) {
  const body = $("queue").tBodies[0];
  body.replaceChildren();
  let n = 0;
  for (const item of items) {
    for (const ev of item.events || []) {
      n++;
      const tr = el("tr", undefined, item.kind === "held" ? "held" : item.priority === 1 ? "paid" : "");
      tr.dataset.id = ev.id;
      tr.append(el("td", CLASSES[item.priority] || item.kind), el("td", ev.user), el("td", ev.text || item.text || ev.kind));
      const actions = el("td");
      if (item.kind === "held") {
        actions.append(button("approve 通过", "approve", () => api("POST", "/api/approve", { id: ev.id })),
          button("reject 拒绝", "delete", () => api("POST", "/api/reject", { id: ev.id })));
      } else {
        actions.append(button("delete 删除", "delete", () => api("DELETE", "/api/queue/" + encodeURIComponent(ev.id))));
      }
      actions.append(button("ban 封禁", "ban", () => api("POST", "/api/ban", { user: ev.user_id || ev.user, platform: ev.platform || null })));
      tr.append(actions);
      body.append(tr);
    }
  }
  $("queue-count").textContent = `(${n})`;
}

function renderSinks(sinks) {
  const body = $("sinks").tBodies[0];
  body.replaceChildren();
  let dropped = 0;
  for (const [name, st] of Object.entries(sinks)) {
    const state = !st.ok ? "failed" : st.state || "live";
    dropped += (st.dropped || 0) + (st.skipped || 0);
    const tr = el("tr");
    tr.dataset.sink = name;
    const stateCell = el("td", state + (st.error ? `: ${st.error}` : ""));
    tr.append(el("td", name), stateCell, el("td", String(st.written ?? "")), el("td", String(st.dropped ?? 0)),
      el("td", String(st.skipped ?? 0)));
    const act = el("td");
    if ("state" in st) act.append(button("reopen 重开", "small", () => api("POST", `/api/sinks/${encodeURIComponent(name)}/reopen`)));
    tr.append(act);
    body.append(tr);
  }
  $("dropped").textContent = dropped;
}

function renderSources(sources) {
  $("sources").replaceChildren(...sources.map((s) => el("li", `${s.name || s.source}: ${s.error ? "error " + s.error : s.connected === false ? "connecting" : "ok"}`)));
}

function fillSelect(select, options, current) {
  const key = options.join("\u0000");
  if (select.dataset.options !== key) {
    select.replaceChildren(...options.map((o) => { const opt = el("option", o); opt.value = o; return opt; }));
    select.dataset.options = key;
  }
  if (current && document.activeElement !== select) select.value = current;
}

function renderActions(actions) {
  const box = $("actions");
  if (box.dataset.names === actions.join(",")) return;
  box.dataset.names = actions.join(",");
  box.replaceChildren(...actions.map((a) => button(a, "", () => api("POST", "/api/action", { name: a }))));
  if (!actions.length) box.append(el("span", "none configured 未配置"));
}

function renderOverlays(enabled) {
  const box = $("overlays");
  if (!box.childElementCount) {
    for (const name of ["subtitles", "chat", "product", "banner"]) {
      const label = el("label");
      const cb = el("input");
      cb.type = "checkbox";
      cb.dataset.overlay = name;
      cb.addEventListener("change", () => api("POST", "/api/overlay", { name, enabled: cb.checked }));
      label.append(cb, document.createTextNode(" " + name));
      box.append(label);
    }
  }
  box.querySelectorAll("input[data-overlay]").forEach((cb) => { cb.checked = enabled.includes(cb.dataset.overlay); });
}

// ------------------------------------------------------------------ preview: a small JPEG twice a second
// (cheap for the host: no video encoder per panel, unlike a WebRTC viewer of the stage)
async function previewLoop() {
  let url = null;
  while (!$("panel").hidden) {
    if (document.visibilityState === "visible") {
      try {
        const r = await fetch("/api/preview.jpg", { headers: headers() });
        if (r.ok) {
          const next = URL.createObjectURL(await r.blob());
          $("preview-img").src = next;
          if (url) URL.revokeObjectURL(url);
          url = next;
        }
      } catch (e) { /* the status stream shows the connection state */ }
    }
    await new Promise((ok) => setTimeout(ok, 500));
  }
}

// ------------------------------------------------------------------ commands and shortcuts
const COMMANDS = {
  interrupt: () => api("POST", "/api/interrupt"),
  pause: () => api("POST", last.paused ? "/api/resume" : "/api/pause"),
  mute: () => api("POST", "/api/mute", { muted: !last.muted }),
  clear: () => confirm("Clear the queue? 清空队列？(paid messages stay 付费留言保留)") && api("POST", "/api/clear", {}),
  ban_current: () => api("POST", "/api/ban_current"),
  say: () => $("say-text").focus(),
};

// push-to-talk: held down (button or key), released to send what was said
let talking = false;
function talk(down) {
  if (down === talking) return;
  talking = down;
  api("POST", "/api/talk", { down });
}
const talkKey = (e) => shortcuts.talk && e.key.toLowerCase() === shortcuts.talk.toLowerCase();
$("talk-btn").addEventListener("pointerdown", () => talk(true));
["pointerup", "pointerleave"].forEach((ev) => $("talk-btn").addEventListener(ev, () => talk(false)));
document.addEventListener("keyup", (e) => { if (talkKey(e)) talk(false); });
window.addEventListener("blur", () => talk(false));

document.addEventListener("keydown", (e) => {
  if ($("panel").hidden || e.ctrlKey || e.metaKey || e.altKey) return;
  const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement.tagName);
  if (typing && e.key !== "Escape") return;
  if (typing) { document.activeElement.blur(); }
  if (talkKey(e)) {
    e.preventDefault();
    if (!$("talk-btn").hidden && !e.repeat) talk(true);
    return;
  }
  for (const [command, key] of Object.entries(shortcuts)) {
    if (key && (e.key === key || e.key.toLowerCase() === key.toLowerCase())) {
      e.preventDefault();
      COMMANDS[command] && COMMANDS[command]();
      return;
    }
  }
});

document.querySelectorAll("button[data-command]").forEach((b) => b.addEventListener("click", () => COMMANDS[b.dataset.command]()));

$("say-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const text = $("say-text").value.trim();
  if (text && (await api("POST", "/api/say", { text })).ok) $("say-text").value = "";
});

$("product-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const body = { id: $("product-id").value || null };
  const num = (id) => ($(id).value === "" ? undefined : Number($(id).value));
  if (num("price") !== undefined) body.price = num("price");
  if (num("original-price") !== undefined) body.original_price = num("original-price");
  if (num("stock") !== undefined) body.stock = Math.trunc(num("stock"));
  if (num("sale-min") !== undefined) body.sale_ends_in_s = num("sale-min") * 60;
  api("POST", "/api/product", body);
});

$("obs-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const source = $("obs-source").value.trim();
  if (source) api("POST", "/api/obs/source", { source, visible: e.submitter.dataset.visible === "true" });
});
$("approval").addEventListener("change", () => api("POST", "/api/approval", { enabled: $("approval").checked }));
$("persona-form").addEventListener("submit", (e) => { e.preventDefault(); api("POST", "/api/persona", { name: $("persona").value }); });
$("login-form").addEventListener("submit", (e) => { e.preventDefault(); login($("token").value.trim()); });
$("logout").addEventListener("click", () => { sessionStorage.removeItem(KEY); token = ""; showLogin(""); });

takeTokenFromFragment();
const saved = sessionStorage.getItem(KEY);
if (saved) login(saved); else showLogin("");
