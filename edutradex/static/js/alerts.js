// Price alerts: a fire arrives on the user's room as `alert_fired`; it shows as a toast and
// moves the bell's unread count (the count comes from the server, never counted here).
(function () {
  "use strict";
  var app = window.EduTradeX;
  if (!app || !app.socket) return;
  // Each fire is toasted once per browser tab: live, or, if it came before this page's
  // connection joined the user's room, from the catch-up the connection asks for.
  var SHOWN = "edutradex-alert-toasts";
  function shown() {
    try { return JSON.parse(window.sessionStorage.getItem(SHOWN) || "[]"); } catch (e) { return []; }
  }
  function toastOnce(fire) {
    var ids = shown();
    if (fire.fire_id !== undefined && ids.indexOf(fire.fire_id) >= 0) return;
    var el = app.toast(fire.message, "info");
    if (el) el.setAttribute("data-testid", "alert-toast");
    if (fire.fire_id === undefined) return;
    ids.push(fire.fire_id);
    try { window.sessionStorage.setItem(SHOWN, JSON.stringify(ids.slice(-50))); } catch (e) { /* private mode */ }
  }
  // On the first page of /notifications, each new fire is added at the top as it comes,
  // built from text nodes (the message is data, never markup), with its own "Mark read".
  function addRow(fire) {
    var rows = document.getElementById("notification-rows");
    if (!rows || !rows.hasAttribute("data-live") || fire.fire_id === undefined) return;
    if (rows.querySelector('[data-fire-id="' + fire.fire_id + '"]')) return;
    var el = app.element;
    var what = el("td");
    what.appendChild(el("b", {}, fire.message));
    if (fire.tick_id !== undefined) what.appendChild(el("span", { "class": "small muted" }, " tick " + fire.tick_id));
    var meta = document.querySelector('meta[name="csrf-token"]');
    var form = el("form", { method: "post", "class": "inline-form",
                            action: rows.getAttribute("data-read-url").replace("/0/read", "/" + fire.fire_id + "/read") });
    form.appendChild(el("input", { type: "hidden", name: "csrf_token", value: meta ? meta.getAttribute("content") : "" }));
    form.appendChild(el("button", { type: "submit", "class": "btn btn-ghost btn-sm", "data-testid": "mark-read" }, "Mark read"));
    var action = el("td");
    action.appendChild(form);
    var tr = el("tr", { "class": "unread", "data-testid": "notification", "data-fire-id": String(fire.fire_id),
                        "data-live": "1" });
    tr.appendChild(el("td", { "class": "small mono" }, fire.at || ""));
    tr.appendChild(what);
    tr.appendChild(action);
    rows.insertBefore(tr, rows.firstChild);
    var table = rows.closest("table");
    if (table) table.hidden = false;
    var empty = document.querySelector('[data-testid="no-notifications"]');
    if (empty) empty.remove();
  }
  function setUnread(unread) {
    if (unread === undefined) return;
    var count = document.getElementById("unread-count");
    if (count) count.textContent = String(unread);
    var badge = document.getElementById("notifications-unread");
    if (badge) badge.textContent = unread + " unread";
    var all = document.getElementById("mark-all-read");
    if (all) all.hidden = !unread;
  }
  app.socket.on("alert_fired", function (data) {
    toastOnce(data);
    addRow(data);
    setUnread(data.unread);
  });
  // Each (re)connection catches up on what came before it joined (alerts/events.py).
  function catchUp() {
    app.socket.emit("alerts_catch_up", {}, function (reply) {
      if (!reply) return;
      (reply.fires || []).slice().reverse().forEach(function (fire) { toastOnce(fire); addRow(fire); });
      setUnread(reply.unread);
    });
  }
  app.socket.on("connect", catchUp);
  if (app.socket.connected) catchUp();
})();
