// obmd's console page: an xterm.js terminal on the WebSocket at this very
// URL (/node/{id}/console?token=...). Output is written to the terminal as
// it comes; keystrokes go back as binary messages of at most 4 KiB, the
// Break button as {"type":"break"}. With mode=ro the terminal takes no
// input. The connection state is shown in the header; a lost connection
// is retried with backoff and the gap is marked in the terminal. Close
// codes that retrying cannot cure (bad request 4400, revoked token 4401,
// node deleted 4404) end the page's attempts; the reason is shown. obmd
// refuses a bad token before the upgrade, which a browser reports only as
// a failed connection (1006): after one, the page asks for itself again,
// and a 4xx answer's {"error": ...} ends the attempts the same way.
"use strict";
(function () {
  const finalCodes = new Set([4400, 4401, 4404]);
  const maxMessage = 4096;
  const params = new URLSearchParams(location.search);
  const readOnly = params.get("mode") === "ro";
  const node = decodeURIComponent(location.pathname.replace(/^\/node\//, "").replace(/\/console$/, ""));

  const stateEl = document.getElementById("state");
  const breakEl = document.getElementById("break");
  document.getElementById("node").textContent = node;
  document.title = "obmd console: " + node;
  if (readOnly) {
    document.getElementById("mode").textContent = "read-only";
    breakEl.hidden = true;
  }

  const term = new Terminal({
    convertEol: true, // the counter and many boot loaders print bare \n
    scrollback: 10000,
    cursorBlink: true,
    disableStdin: readOnly,
    fontFamily: "ui-monospace, 'DejaVu Sans Mono', monospace",
    fontSize: 14,
  });
  const fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(document.getElementById("terminal"));
  fit.fit();
  window.addEventListener("resize", () => fit.fit());
  term.focus();

  let ws = null;
  let state = "connecting";
  let lostAt = 0;
  let backoff = 1000;
  let connects = 0;
  const encoder = new TextEncoder();

  function setState(s, detail) {
    state = s;
    stateEl.className = "state " + s;
    stateEl.textContent = detail ? s + ": " + detail : s;
    breakEl.disabled = s !== "connected";
  }

  function mark(text) {
    term.write("\r\n\x1b[7m[obmd page: " + text + "]\x1b[0m\r\n");
  }

  function url() {
    const q = new URLSearchParams(location.search);
    if (connects > 0) q.delete("replay"); // what was replayed is on screen already
    return (location.protocol === "https:" ? "wss:" : "ws:") + "//" + location.host + location.pathname + "?" + q.toString();
  }

  function connect() {
    setState(connects === 0 ? "connecting" : "reconnecting");
    const sock = new WebSocket(url());
    sock.binaryType = "arraybuffer";
    ws = sock;
    sock.onopen = () => {
      if (lostAt) {
        mark("reconnected after " + ((Date.now() - lostAt) / 1000).toFixed(1) + " s; output in between is not shown");
        lostAt = 0;
      }
      connects++;
      backoff = 1000;
      setState("connected");
    };
    sock.onmessage = (ev) => {
      if (ev.data instanceof ArrayBuffer) term.write(new Uint8Array(ev.data));
    };
    let opened = false;
    sock.addEventListener("open", () => { opened = true; });
    sock.onclose = async (ev) => {
      if (ws !== sock) return;
      ws = null;
      const why = ev.reason || (ev.code === 1006 ? "connection lost" : "code " + ev.code);
      if (finalCodes.has(ev.code)) {
        mark("console closed: " + why);
        setState("closed", why);
        return;
      }
      if (!opened) {
        const refused = await refusal();
        if (refused) {
          mark("console closed: " + refused);
          setState("closed", refused);
          return;
        }
      }
      if (!lostAt) {
        lostAt = Date.now();
        if (connects > 0) mark("disconnected: " + why + "; reconnecting");
      }
      setState("reconnecting", why);
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 30000);
    };
  }

  // refusal asks for this page again: obmd answers 4xx with {"error": ...}
  // when the token or the request is wrong. It returns that error, or ""
  // when the page is served (or obmd is unreachable): worth retrying.
  async function refusal() {
    try {
      const r = await fetch(location.href, { headers: { Accept: "text/html" }, cache: "no-store" });
      if (r.status >= 400 && r.status < 500) {
        const body = await r.json().catch(() => ({}));
        return body.error || "HTTP " + r.status;
      }
    } catch (e) {
      // obmd unreachable: keep trying
    }
    return "";
  }

  function send(data) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(data);
    return true;
  }

  if (!readOnly) {
    term.onData((text) => {
      const bytes = encoder.encode(text);
      for (let off = 0; off < bytes.length; off += maxMessage) {
        send(bytes.subarray(off, off + maxMessage));
      }
    });
    term.onBinary((text) => {
      const bytes = Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff);
      send(bytes);
    });
    breakEl.addEventListener("click", () => {
      send(JSON.stringify({ type: "break" }));
      term.focus();
    });
  }

  // For tests and the curious: the terminal and the connection state.
  window.obmdConsole = { term: term, state: () => state };
  connect();
})();
