// EduTradeX front end: toasts, one shared Socket.IO connection, small helpers.
(function () {
  "use strict";

  function autohide(toast) {
    setTimeout(function () { toast.remove(); }, 6000);
  }

  function toast(message, category) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var el = document.createElement("div");
    el.className = "toast toast-" + (category || "info");
    el.setAttribute("role", "status");
    el.textContent = message;
    box.appendChild(el);
    autohide(el);
  }

  document.querySelectorAll("[data-autohide]").forEach(autohide);
  document.body.addEventListener("htmx:afterSwap", function (evt) {
    if (evt.detail.target && evt.detail.target.id === "toasts") {
      evt.detail.target.querySelectorAll("[data-autohide]").forEach(autohide);
    }
  });
  // A network failure (server down) is the one error htmx cannot swap a message for.
  document.body.addEventListener("htmx:sendError", function () {
    toast("Cannot reach the server. Check your connection and try again.", "error");
  });

  // One Socket.IO connection per page. The server puts a signed-in user in their own
  // room from the session cookie; pages subscribe to public rooms through EduTradeX.socket.
  var socket = window.io ? window.io({ transports: ["websocket", "polling"] }) : null;

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
    // An admin deactivated this account: the session is already void server-side.
    socket.on("force_logout", function (data) {
      toast((data && data.message) || "You have been signed out.", "warning");
      setTimeout(function () { window.location.assign("/login"); }, 1500);
    });
  }

  window.EduTradeX = { socket: socket, toast: toast, formatMoney: formatMoney };
})();
