// Rise/fall trade page: chart with entry lines, live payout text, countdowns, and live
// settlement results. The server decides everything; this file only displays.
(function () {
  "use strict";

  var page = document.getElementById("trade-page");
  if (!page || !window.EduTradeX) return;
  var EduTradeX = window.EduTradeX;
  var symbol = page.getAttribute("data-symbol");
  var precision = Number(page.getAttribute("data-precision"));
  var serverOffset = 0;  // server clock - browser clock, in ms
  var lastMid = {};      // symbol -> latest mid (Number)
  var tickStops = {};    // symbol -> unsubscribe function
  var priceLines = {};   // trade id -> chart price line handle

  // ---- chart --------------------------------------------------------------------------
  var chart = null;
  var chartEl = document.getElementById("trade-chart");
  if (chartEl && EduTradeX.MarketChart) {
    chart = new EduTradeX.MarketChart(chartEl, { symbol: symbol, resolution: chartEl.getAttribute("data-resolution") || "5s" });
    chart.onTick(function (tick) {
      var price = document.getElementById("live-price");
      if (price) price.textContent = Number(tick.mid).toFixed(precision);
    });
  }

  var picker = document.getElementById("symbol-picker");
  if (picker) {
    picker.addEventListener("change", function () {
      window.location.href = page.getAttribute("data-trade-url").replace("__SYMBOL__", encodeURIComponent(picker.value));
    });
  }

  // ---- payout text: stake * (1 + pct/100), half-even to the cent, in integer cents ----
  var stakeInput = document.getElementById("stake");
  var payoutText = document.getElementById("payout-text");

  function toHundredths(text) {
    var match = /^\s*(\d{1,12})(?:\.(\d{1,2}))?\s*$/.exec(text || "");
    if (!match) return null;
    return Number(match[1]) * 100 + Number(((match[2] || "") + "00").slice(0, 2));
  }

  function payoutCents(stakeCents, pctHundredths) {
    // stake * (10000 + pct) / 10000, rounded half to even.
    var numerator = stakeCents * (10000 + pctHundredths);
    var quotient = Math.floor(numerator / 10000);
    var remainder = numerator - quotient * 10000;
    if (remainder > 5000 || (remainder === 5000 && quotient % 2 === 1)) quotient += 1;
    return quotient;
  }

  function updatePayout() {
    if (!stakeInput || !payoutText) return;
    var stake = toHundredths(stakeInput.value);
    var pct = toHundredths(payoutText.getAttribute("data-percent"));
    var stakeEl = document.getElementById("payout-stake");
    var amountEl = document.getElementById("payout-amount");
    if (stake === null || stake <= 0 || pct === null || !Number.isSafeInteger(stake * (10000 + pct))) {
      stakeEl.textContent = "—";
      amountEl.textContent = "—";
      return;
    }
    stakeEl.textContent = EduTradeX.formatMoney(stake / 100);
    amountEl.textContent = EduTradeX.formatMoney(payoutCents(stake, pct) / 100);
  }

  if (stakeInput) {
    stakeInput.addEventListener("input", updatePayout);
    document.querySelectorAll(".quick-stake").forEach(function (button) {
      button.addEventListener("click", function () {
        stakeInput.value = button.getAttribute("data-stake");
        updatePayout();
      });
    });
    updatePayout();
  }

  // ---- open trades: countdown, standing, entry lines -------------------------------------
  function readServerClock(el) {
    var now = Number(el && el.getAttribute("data-server-now-ms"));
    if (now) serverOffset = now - Date.now();
  }

  function watchSymbol(sym) {
    if (tickStops[sym] || !EduTradeX.MarketTicks) return;
    tickStops[sym] = EduTradeX.MarketTicks.subscribe(sym, function (tick) {
      lastMid[sym] = Number(tick.mid);
    });
  }

  function formatLeft(ms) {
    var seconds = Math.max(0, Math.ceil(ms / 1000));
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    var mm = (h ? String(m).padStart(2, "0") : String(m)) + ":" + String(s).padStart(2, "0");
    return h ? h + ":" + mm : mm;
  }

  // A placement appends its row; keep one row per trade (a replayed submission answers
  // with the same trade) in expiry order.
  function orderRows() {
    var list = document.getElementById("open-trade-list");
    if (!list) return;
    var seen = {};
    var rows = Array.prototype.slice.call(list.querySelectorAll(".open-trade")).filter(function (row) {
      var id = row.getAttribute("data-trade-id");
      if (seen[id]) { row.remove(); return false; }
      seen[id] = true;
      return true;
    });
    rows.sort(function (a, b) {
      return Number(a.getAttribute("data-expires-ms")) - Number(b.getAttribute("data-expires-ms"));
    });
    rows.forEach(function (row) { list.appendChild(row); });
  }

  function syncOpenTrades() {
    var box = document.getElementById("open-trades");
    readServerClock(box);
    orderRows();
    var present = {};
    document.querySelectorAll("#open-trades .open-trade").forEach(function (row) {
      var id = row.getAttribute("data-trade-id");
      var sym = row.getAttribute("data-symbol");
      present[id] = true;
      watchSymbol(sym);
      if (chart && sym === symbol && !priceLines[id]) {
        var up = row.getAttribute("data-direction") === "UP";
        priceLines[id] = chart.addPriceLine({ price: row.getAttribute("data-entry"), color: up ? "#16c784" : "#ea3943",
                                              title: (up ? "▲ " : "▼ ") + "#" + id });
      }
    });
    Object.keys(priceLines).forEach(function (id) {
      if (!present[id]) removeLine(id);
    });
  }

  function removeLine(id) {
    if (priceLines[id] && chart) chart.removePriceLine(priceLines[id]);
    delete priceLines[id];
  }

  function renderCountdowns() {
    var now = Date.now() + serverOffset;
    document.querySelectorAll("#open-trades .open-trade").forEach(function (row) {
      var expires = Number(row.getAttribute("data-expires-ms"));
      var duration = Number(row.getAttribute("data-duration")) * 1000;
      var left = expires - now;
      var countdown = row.querySelector(".countdown");
      countdown.textContent = left > 0 ? formatLeft(left) : "settling…";
      var bar = row.querySelector(".progress-bar");
      if (bar) bar.style.width = Math.min(100, Math.max(0, 100 - (left / duration) * 100)) + "%";
      var standing = row.querySelector(".standing");
      var mid = lastMid[row.getAttribute("data-symbol")];
      if (mid === undefined) return;
      var entry = Number(row.getAttribute("data-entry"));
      var up = row.getAttribute("data-direction") === "UP";
      var state = mid === entry ? "tie" : ((mid > entry) === up ? "win" : "loss");
      standing.textContent = state === "tie" ? "level" : (state === "win" ? "winning" : "losing");
      standing.className = "standing badge badge-" + state;
    });
  }

  // ---- settlement results, live ----------------------------------------------------------
  var refreshTimer = null;
  function refreshActivity() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(function () {
      refreshTimer = null;
      if (window.htmx && document.getElementById("open-trades")) {
        window.htmx.ajax("GET", page.getAttribute("data-activity-url"), { target: "#open-trades", swap: "outerHTML" });
      }
    }, 150);
  }

  if (EduTradeX.socket) {
    EduTradeX.socket.on("trade_settled", function (trade) {
      removeLine(String(trade.id));
      var row = document.getElementById("trade-" + trade.id);
      if (row) row.classList.add("settled");
      var text = (trade.market_name || trade.symbol) + " " + trade.direction + " " + EduTradeX.formatMoney(trade.stake) + ": " + trade.result;
      if (trade.result === "WIN") text += " +" + EduTradeX.formatMoney(trade.profit) + " (paid " + EduTradeX.formatMoney(trade.payout) + ")";
      else if (trade.result === "TIE") text += ", stake returned";
      if (trade.exit_price) text += " · exit " + trade.exit_price.replace(/0+$/, "").replace(/\.$/, "");
      EduTradeX.toast(text, trade.result === "WIN" ? "success" : trade.result === "LOSS" ? "error" : "info");
      refreshActivity();
    });
  }

  // Toasts swapped in out of band (placement confirmations) hide themselves too.
  document.body.addEventListener("htmx:afterSettle", function () {
    document.querySelectorAll("#toasts [data-autohide]:not([data-hiding])").forEach(function (toast) {
      toast.setAttribute("data-hiding", "1");
      setTimeout(function () { toast.remove(); }, 6000);
    });
    syncOpenTrades();
    renderCountdowns();
  });

  syncOpenTrades();
  renderCountdowns();
  setInterval(renderCountdowns, 200);
})();
