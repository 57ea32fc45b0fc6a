// Price alerts: a fire arrives on the user's room as `alert_fired`; it shows as a toast and
// moves the bell's unread count (the count comes from the server, never counted here).
(function () {
  "use strict";
  var app = window.EduTradeX;
  if (!app || !app.socket) return;
  // Each fire is toasted once per browser tab: live, or, if it came while the page was
  // loading (no connection yet to hear it), from the recent unread fires the page carries.
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
  app.socket.on("alert_fired", function (data) {
    toastOnce(data);
    var count = document.getElementById("unread-count");
    if (count && data.unread !== undefined) count.textContent = String(data.unread);
  });
  var recent = document.getElementById("recent-alert-fires");
  if (recent) {
    var fires = [];
    try { fires = JSON.parse(recent.getAttribute("data-fires") || "[]"); } catch (e) { fires = []; }
    fires.reverse().forEach(toastOnce);
  }
})();
