// Price alerts: a fire arrives on the user's room as `alert_fired`; it shows as a toast and
// moves the bell's unread count (the count comes from the server, never counted here).
(function () {
  "use strict";
  var app = window.EduTradeX;
  if (!app || !app.socket) return;
  app.socket.on("alert_fired", function (data) {
    var el = app.toast(data.message, "info");
    if (el) el.setAttribute("data-testid", "alert-toast");
    var count = document.getElementById("unread-count");
    if (count && data.unread !== undefined) count.textContent = String(data.unread);
  });
})();
