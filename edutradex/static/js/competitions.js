// Competition countdowns: the server renders the seconds left by its own clock
// (data-seconds-left); here they only tick down, so a wrong device clock changes nothing.
(function () {
  "use strict";
  var started = Date.now();
  function format(seconds) {
    if (seconds <= 0) return "now";
    var d = Math.floor(seconds / 86400), h = Math.floor(seconds % 86400 / 3600),
        m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return (d ? d + "d " : "") + pad(h) + ":" + pad(m) + ":" + pad(s);
  }
  function tick() {
    var elapsed = Math.floor((Date.now() - started) / 1000);
    document.querySelectorAll("[data-seconds-left]").forEach(function (el) {
      var left = parseInt(el.getAttribute("data-seconds-left"), 10) - elapsed;
      var value = el.querySelector(".countdown-value");
      if (value) value.textContent = format(Math.max(0, left));
    });
  }
  tick();
  setInterval(tick, 1000);
})();

// The live leaderboard: page 1 follows the `leaderboard` frames of the competition's room
// (built once a second on the server); your pinned row follows your own `leaderboard_me`.
// Text only (textContent), never HTML from a frame.
(function () {
  "use strict";
  var board = document.getElementById("board");
  var socket = window.EduTradeX && window.EduTradeX.socket;
  if (!board || !socket) return;
  var id = parseInt(board.getAttribute("data-competition-id"), 10);
  var body = board.querySelector("[data-board-rows]");
  var followsFrames = board.getAttribute("data-view") === "live" && board.getAttribute("data-page") === "1";

  function cell(label, text, className) {
    var td = document.createElement("td");
    td.setAttribute("data-label", label);
    if (className) td.className = className;
    td.textContent = text;
    return td;
  }
  function renderRows(rows) {
    if (!body) return;
    var mine = board.querySelector("tr.competition-me");
    var myId = mine ? mine.getAttribute("data-participant") : null;
    var fragment = document.createDocumentFragment();
    rows.forEach(function (row) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-testid", "board-row");
      tr.setAttribute("data-participant", row.participant_id);
      if (String(row.participant_id) === myId) tr.className = "competition-me";
      var rank = cell("Rank", String(row.rank), "mono");
      if (row.move) {
        var arrow = document.createElement("span");
        arrow.className = row.move > 0 ? "board-up" : "board-down";
        arrow.textContent = (row.move > 0 ? " ▲" : " ▼") + Math.abs(row.move);
        rank.appendChild(arrow);
      }
      tr.appendChild(rank);
      var trader = document.createElement("td");
      trader.setAttribute("data-label", "Trader");
      var link = document.createElement("a");
      link.href = "/competitions/" + id + "/traders/" + row.participant_id;
      link.textContent = row.name;
      trader.appendChild(link);
      tr.appendChild(trader);
      tr.appendChild(cell("Equity", EduTradeX.formatMoney(row.equity), "num mono"));
      tr.appendChild(cell("Return", row.return_percent + " %", "num mono"));
      tr.appendChild(cell("Trades", String(row.trades), "num mono"));
      tr.appendChild(cell("Win rate", row.win_rate === null ? "—" : row.win_rate + " %", "num mono"));
      tr.appendChild(cell("Max drawdown", "—", "num mono"));
      fragment.appendChild(tr);
    });
    body.replaceChildren(fragment);
  }
  function watch() { socket.emit("competition_watch", { id: id }); }
  socket.on("connect", watch);
  if (socket.connected) watch();
  socket.on("leaderboard", function (frame) {
    if (frame.id === id && followsFrames) renderRows(frame.rows);
  });
  socket.on("leaderboard_me", function (me) {
    if (me.id !== id) return;
    var rank = board.querySelector("[data-my-rank]"), equity = board.querySelector("[data-my-equity]");
    if (rank) rank.textContent = me.rank === null ? "—" : String(me.rank);
    if (equity) equity.textContent = EduTradeX.formatMoney(me.equity);
  });
})();
