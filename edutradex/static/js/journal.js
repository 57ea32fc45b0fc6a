// Journal: the equity curve (Lightweight Charts). The points come in the container's
// data-points attribute ([{time, value}], Unix seconds, UTC): no inline script (CSP).
(function () {
  "use strict";

  var box = document.getElementById("journal-chart");
  var LC = window.LightweightCharts;
  if (!box || !LC) return;
  var points = JSON.parse(box.getAttribute("data-points") || "[]").map(function (p) {
    return { time: p.time, value: Number(p.value) };
  });
  var loading = box.querySelector("[data-role=loading]");
  if (loading) loading.remove();
  var chart = LC.createChart(box, {
    autoSize: true,
    // The logo injects a <style> element, which the CSP blocks: a plain link instead.
    layout: { background: { type: "solid", color: "#0b0f17" }, textColor: "#8b97b0", attributionLogo: false },
    grid: { vertLines: { color: "#151c2b" }, horzLines: { color: "#151c2b" } },
    rightPriceScale: { borderColor: "#243049" },
    timeScale: { borderColor: "#243049", timeVisible: true },
  });
  var series = chart.addSeries(LC.BaselineSeries, {
    baseValue: { type: "price", price: points.length ? points[0].value : 0 },
    topLineColor: "#16c784", bottomLineColor: "#ea3943",
    topFillColor1: "rgba(22,199,132,0.25)", topFillColor2: "rgba(22,199,132,0.02)",
    bottomFillColor1: "rgba(234,57,67,0.02)", bottomFillColor2: "rgba(234,57,67,0.25)",
  });
  series.setData(points);
  chart.timeScale().fitContent();
  var credit = document.createElement("a");
  credit.className = "market-chart-attribution";
  credit.textContent = "Charts by TradingView";
  credit.href = "https://www.tradingview.com/";
  credit.target = "_blank";
  credit.rel = "noopener";
  box.appendChild(credit);
  box.setAttribute("data-ready", "1");
  window.EduTradeX = window.EduTradeX || {};
  window.EduTradeX.journalChart = chart;
})();
