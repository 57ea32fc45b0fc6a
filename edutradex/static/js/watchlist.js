// Watchlist: live bid/ask for the whole list over ONE subscription. The server picks the
// room from the stored list; this page only asks again after the list changed (an HTMX
// swap of #watchlist) or after a reconnect.
(function () {
  "use strict";

  var EduTradeX = window.EduTradeX || {};
  var socket = EduTradeX.socket;
  if (!socket || !document.getElementById("watchlist")) return;

  function subscribe() { if (socket.connected) socket.emit("subscribe_watchlist"); }

  function show(frames) {
    var box = document.getElementById("watchlist");
    if (!box) return;
    frames.forEach(function (frame) {
      var row = box.querySelector('.watchlist-row[data-symbol="' + frame.symbol + '"]');
      if (!row) return;
      var p = frame.precision !== undefined ? frame.precision : Number(row.getAttribute("data-precision"));
      row.querySelector("[data-role=bid]").textContent = Number(frame.bid).toFixed(p);
      row.querySelector("[data-role=ask]").textContent = Number(frame.ask).toFixed(p);
      row.setAttribute("data-live", "1");
    });
  }

  socket.on("watchlist_ticks", show);
  socket.on("connect", subscribe);
  subscribe();
  document.body.addEventListener("htmx:afterSwap", function (evt) {
    if (evt.detail && evt.detail.target && evt.detail.target.id === "watchlist") subscribe();
  });
})();
