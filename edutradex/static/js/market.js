// Markets pages: the live price board (/markets) and the chart terminal (/markets/<symbol>).
(function () {
  "use strict";

  var EduTradeX = window.EduTradeX || {};
  var ticks = EduTradeX.MarketTicks;

  function fixed(value, precision) {
    return Number(value).toFixed(precision);
  }

  function setChange(el, mid, reference) {
    if (!el || !reference) return;
    var pct = (mid - reference) / reference * 100;
    el.textContent = (pct >= 0 ? "+" : "") + pct.toFixed(2) + "%";
    el.classList.toggle("up", pct > 0);
    el.classList.toggle("down", pct < 0);
  }

  // Colour a price cell by the direction of the last move, then let it fade.
  function flash(el, text, previous, current) {
    if (!el) return;
    el.textContent = text;
    if (previous === null || previous === current) return;
    var cls = current > previous ? "tick-up" : "tick-down";
    el.classList.remove("tick-up", "tick-down");
    void el.offsetWidth;  // restart the CSS animation
    el.classList.add(cls);
  }

  function markLive(container) {
    container.querySelectorAll("[data-role=status]").forEach(function (badge) {
      if (badge.classList.contains("market-status-paused")) return;
      badge.classList.remove("market-status-stale", "market-status-unavailable");
      badge.classList.add("market-status-live");
      badge.textContent = "Live";
      badge.removeAttribute("title");
    });
  }

  function markStale(container) {
    container.querySelectorAll("[data-role=status].market-status-live").forEach(function (badge) {
      badge.classList.remove("market-status-live");
      badge.classList.add("market-status-stale");
      badge.textContent = "Stale";
      badge.title = "No price for a while: trading on this market is paused.";
    });
  }

  var staleHolder = document.querySelector("[data-stale-ms]");
  var staleMs = (staleHolder && Number(staleHolder.getAttribute("data-stale-ms"))) || 10000;

  function watch(container, symbol, onFrame) {
    var precision = Number(container.getAttribute("data-precision"));
    var lastTickAt = Date.now();
    setInterval(function () { if (Date.now() - lastTickAt > staleMs) markStale(container); }, 2000);
    var reference = Number(container.getAttribute("data-reference")) || null;
    var lastMid = null;
    var cells = {
      bid: container.querySelector("[data-role=bid]"), ask: container.querySelector("[data-role=ask]"),
      mid: container.querySelector("[data-role=mid]"), change: container.querySelector("[data-role=change]"),
    };
    return ticks.subscribe(symbol, function (tick) {
      var p = tick.precision !== undefined ? tick.precision : precision;
      var mid = Number(tick.mid);
      flash(cells.bid, fixed(tick.bid, p), lastMid, mid);
      flash(cells.ask, fixed(tick.ask, p), lastMid, mid);
      flash(cells.mid, fixed(tick.mid, p), lastMid, mid);
      if (!reference) reference = mid;
      setChange(cells.change, mid, reference);
      lastMid = mid;
      lastTickAt = Date.now();
      markLive(container);
      if (onFrame) onFrame(tick);
    });
  }

  // ---- /markets ---------------------------------------------------------------------------
  var board = document.querySelector(".market-table");
  if (board && ticks) {
    ticks.watchBoard();
    board.querySelectorAll("tr.market-row").forEach(function (row) {
      watch(row, row.getAttribute("data-symbol"));
    });
    var filter = document.querySelector(".market-filter");
    var emptyNote = document.querySelector(".market-empty-filter");
    if (filter) {
      filter.addEventListener("click", function (evt) {
        var link = evt.target.closest("a[data-type]");
        if (!link) return;
        evt.preventDefault();
        var type = link.getAttribute("data-type");
        var shown = 0;
        board.querySelectorAll("tr.market-row").forEach(function (row) {
          row.hidden = !!type && row.getAttribute("data-type") !== type;
          if (!row.hidden) shown++;
        });
        if (emptyNote) emptyNote.hidden = shown > 0;
        filter.querySelectorAll("a").forEach(function (a) {
          a.classList.toggle("btn-primary", a === link);
          a.classList.toggle("btn-ghost", a !== link);
        });
        history.replaceState(null, "", link.getAttribute("href"));
      });
    }
  }

  // ---- /markets/<symbol> ------------------------------------------------------------------
  var chartBox = document.getElementById("market-chart");
  if (chartBox && EduTradeX.MarketChart) {
    var head = document.querySelector(".terminal-head");
    var chart = new EduTradeX.MarketChart(chartBox, {
      symbol: chartBox.getAttribute("data-symbol"), resolution: chartBox.getAttribute("data-resolution"),
    });
    watch(head, chartBox.getAttribute("data-symbol"));
    var resolutionBar = document.querySelector(".resolution-bar");
    if (resolutionBar) {
      chart.bindResolutionBar(resolutionBar, function (res) {
        var url = new URL(window.location.href);
        url.searchParams.set("resolution", res);
        history.replaceState(null, "", url.toString());
      });
    }
    var select = document.getElementById("market-switch");
    if (select) {
      select.addEventListener("change", function () {
        if (select.value) window.location.href = select.value + window.location.search;
      });
    }
    window.EduTradeX.marketChart = chart;  // handy for the browser tests and the console
  }
})();
