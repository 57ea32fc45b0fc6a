// Admin panel: the volume-per-day histogram on the overview page, live prices on the
// markets pages.
(function () {
  "use strict";

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function drawVolume(el) {
    fetch(el.dataset.source, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (payload) {
        el.innerHTML = "";
        var days = payload.days || [];
        if (!days.some(function (d) { return Number(d.value) > 0; })) {
          var empty = document.createElement("p");
          empty.className = "muted";
          empty.textContent = "No rise/fall trades in the last 30 days.";
          el.appendChild(empty);
          return;
        }
        var chart = LightweightCharts.createChart(el, {
          autoSize: true,
          // The logo is injected with an inline style, which the CSP blocks; the page
          // credits TradingView in text instead.
          layout: { background: { color: "transparent" }, textColor: cssVar("--muted", "#8b97b0"), attributionLogo: false },
          grid: { vertLines: { visible: false }, horzLines: { color: cssVar("--border", "#243049") } },
          rightPriceScale: { borderVisible: false },
          timeScale: { borderVisible: false },
          handleScroll: false,
          handleScale: false,
        });
        var series = chart.addSeries(LightweightCharts.HistogramSeries, {
          color: cssVar("--accent", "#2563eb"),
          priceFormat: { type: "price", precision: 2, minMove: 0.01 },
        });
        series.setData(days.map(function (d) { return { time: d.time, value: Number(d.value) }; }));
        chart.timeScale().fitContent();
        el.dataset.ready = "true";
      })
      .catch(function () {
        el.innerHTML = "";
        var error = document.createElement("p");
        error.className = "error";
        error.textContent = "The volume chart could not be loaded. Reload the page to try again.";
        el.appendChild(error);
      });
  }

  // Rows carry data-symbol and data-precision; the price cell is [data-live-price].
  function liveMarketPrices(table) {
    var socket = window.EduTradeX && window.EduTradeX.socket;
    if (!socket) return;
    var rows = {};
    table.querySelectorAll("tr[data-symbol]").forEach(function (row) { rows[row.dataset.symbol] = row; });
    function subscribeAll() {
      Object.keys(rows).forEach(function (symbol) { socket.emit("subscribe", { symbol: symbol }); });
    }
    socket.on("tick", function (frame) {
      var row = rows[frame.symbol];
      if (!row) return;
      var digits = Number(row.dataset.precision || 5);
      var cell = row.querySelector("[data-live-price]");
      cell.textContent = Number(frame.bid).toFixed(digits) + " / " + Number(frame.ask).toFixed(digits);
    });
    socket.on("connect", subscribeAll);
    if (socket.connected) subscribeAll();
  }

  var volume = document.getElementById("volume-chart");
  if (volume && window.LightweightCharts) drawVolume(volume);
  var markets = document.getElementById("admin-markets");
  if (markets) liveMarketPrices(markets);
})();
