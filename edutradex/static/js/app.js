// EduTradeX front end: toasts, one shared Socket.IO connection, small helpers.
(function () {
  "use strict";

  // Toasts are small, dismissible and hide themselves; however one arrives (built here,
  // flashed into the page, swapped in by htmx), the observer below gives it both.
  var TOAST_MS = 8000;

  // An element from data: attributes set one by one and the text as a text node, so
  // nothing the server or a user sent is ever parsed as markup.
  function element(tag, attributes, text) {
    var el = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) { el.setAttribute(name, attributes[name]); });
    if (text !== undefined && text !== null) el.textContent = String(text);
    return el;
  }

  function prepareToast(el) {
    if (el.nodeType !== 1 || !el.classList.contains("toast") || el.hasAttribute("data-ready")) return;
    el.setAttribute("data-ready", "1");
    if (!el.querySelector(".toast-close")) {
      el.appendChild(element("button", { type: "button", "class": "toast-close", "aria-label": "Dismiss" }, "×"));
    }
    setTimeout(function () { el.remove(); }, TOAST_MS);
  }

  function toast(message, category) {
    var box = document.getElementById("toasts");
    if (!box) return null;
    var el = document.createElement("div");
    el.className = "toast toast-" + (category || "info");
    el.setAttribute("role", "status");
    el.setAttribute("data-testid", "toast");
    var text = document.createElement("span");
    text.className = "toast-text";
    text.textContent = message;
    el.appendChild(text);
    box.appendChild(el);
    return el;
  }

  var toastBox = document.getElementById("toasts");
  if (toastBox) {
    Array.prototype.forEach.call(toastBox.children, prepareToast);
    new MutationObserver(function (changes) {
      changes.forEach(function (change) { Array.prototype.forEach.call(change.addedNodes, prepareToast); });
    }).observe(toastBox, { childList: true });
    toastBox.addEventListener("click", function (evt) {
      var close = evt.target.closest(".toast-close");
      if (close) close.closest(".toast").remove();
    });
  }

  // A network failure (server down) is the one error htmx cannot swap a message for.
  document.body.addEventListener("htmx:sendError", function () {
    toast("Cannot reach the server. Check your connection and try again.", "error");
  });

  // One Socket.IO connection per page. The server puts a signed-in user in their own
  // room from the session cookie; pages subscribe to public rooms through EduTradeX.socket.
  // The transports are the server's (SOCKETIO_TRANSPORTS): WebSocket only when several web
  // processes share the port, where long-polling requests could reach another process.
  function socketTransports() {
    var meta = document.querySelector('meta[name="socketio-transports"]');
    var listed = meta ? meta.getAttribute("content").split(",").filter(Boolean) : [];
    return listed.length ? listed : ["websocket", "polling"];
  }
  var socket = window.io ? window.io({ transports: socketTransports() }) : null;

  function formatMoney(value) {
    var n = Number(value);
    return n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  if (socket) {
    socket.on("balance", function (data) {
      var el = document.getElementById("demo-balance");
      if (el && data && data.demo_balance !== undefined) el.textContent = formatMoney(data.demo_balance);
    });
    socket.on("notice", function (data) { toast(data.message, data.category); });
    // Every page: the user's room is joined on every connection, so a trade that settles
    // while its trader reads another page is announced there too.
    socket.on("trade_settled", function (trade) {
      var text = (trade.market_name || trade.symbol) + " " + trade.direction + " " + formatMoney(trade.stake) + ": " + trade.result;
      if (trade.result === "WIN") text += " +" + formatMoney(trade.profit);
      else if (trade.result === "TIE") text += ", stake returned";
      var el = toast(text, trade.result === "WIN" ? "success" : trade.result === "LOSS" ? "error" : "info");
      if (el) el.setAttribute("data-testid", "settlement-toast");
    });
    // An admin deactivated this account: the session is already void server-side.
    socket.on("force_logout", function (data) {
      toast((data && data.message) || "You have been signed out.", "warning");
      setTimeout(function () { window.location.assign("/login"); }, 1500);
    });
  }

  // ---- the phone menu: a real button that says whether the menu is open ------------------
  var menuButton = document.querySelector(".nav-toggle[aria-controls]");
  if (menuButton) {
    menuButton.addEventListener("click", function () {
      menuButton.setAttribute("aria-expanded", menuButton.getAttribute("aria-expanded") === "true" ? "false" : "true");
    });
    document.addEventListener("keydown", function (evt) {
      if (evt.key === "Escape" && menuButton.getAttribute("aria-expanded") === "true") {
        menuButton.setAttribute("aria-expanded", "false");
        menuButton.focus();
      }
    });
  }

  // ---- connection state: Live / Reconnecting / Offline ------------------------------------
  // Prices arrive over the socket; when it drops they freeze, so every page that shows
  // prices says so (elements with data-connection-state). Reconnecting while Socket.IO
  // retries; Offline once that has lasted data-offline-after-ms (default 10 s), or the
  // browser says it is offline, or the client gave up. Socket.IO keeps retrying, and
  // the page turns Live again on its own when the server is back.
  var LABELS = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", offline: "Offline" };
  var TITLES = {
    connecting: "Connecting to the live price stream.",
    live: "Prices are streaming live.",
    reconnecting: "The live connection dropped: prices are paused while we reconnect.",
    offline: "No connection to the server: prices shown are not current. Retrying…",
  };
  var connectionState = null;
  var offlineTimer = null;

  function setConnectionState(state) {
    if (state === connectionState) return;
    connectionState = state;
    document.documentElement.setAttribute("data-connection", state);
    document.querySelectorAll("[data-connection-state]").forEach(function (el) {
      el.setAttribute("data-state", state);
      el.title = TITLES[state];
      var label = el.querySelector(".connection-label") || el;
      label.textContent = LABELS[state];
    });
  }

  function offlineAfterMs() {
    var el = document.querySelector("[data-connection-state][data-offline-after-ms]");
    return (el && Number(el.getAttribute("data-offline-after-ms"))) || 10000;
  }

  function connectionLost() {
    if (!navigator.onLine || !socket.active) { setConnectionState("offline"); return; }
    if (connectionState === "reconnecting" || connectionState === "offline") return;  // already counting
    setConnectionState("reconnecting");
    clearTimeout(offlineTimer);
    offlineTimer = setTimeout(function () {
      if (!socket.connected) setConnectionState("offline");
    }, offlineAfterMs());
  }

  if (socket) {
    setConnectionState(socket.connected ? "live" : "connecting");
    socket.on("connect", function () { clearTimeout(offlineTimer); setConnectionState("live"); });
    socket.on("disconnect", function (reason) {
      // The server closed it (e.g. a restart in a moment): Socket.IO does not retry that one.
      if (reason === "io server disconnect") socket.connect();
      connectionLost();
    });
    socket.on("connect_error", connectionLost);
    socket.io.on("reconnect_failed", function () { setConnectionState("offline"); });
    window.addEventListener("offline", function () { setConnectionState("offline"); });
    window.addEventListener("online", function () { if (!socket.connected) connectionLost(); });
  } else {
    setConnectionState("offline");
  }

  window.EduTradeX = { socket: socket, toast: toast, formatMoney: formatMoney, element: element,
                       connectionState: function () { return connectionState; } };
})();
