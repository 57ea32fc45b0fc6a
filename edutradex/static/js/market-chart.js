// EduTradeX market chart: live candlesticks for one symbol, reusable on any page.
//
//   var chart = new EduTradeX.MarketChart(el, {symbol: "OTC_EUR_USD", resolution: "1m"});
//   chart.setSymbol("VOLATILITY_50");  chart.setResolution("5s");
//   var line = chart.addPriceLine({price: 1.0851, color: "#16c784", title: "Entry"});
//   chart.removePriceLine(line);
//   var stop = chart.onTick(function (tick) { ... });   // {symbol, bid, ask, mid, ts_ms}
//   chart.bindResolutionBar(el, function (res) { ... });  // buttons with data-resolution
//   chart.destroy();
//
// Markup options (data- attributes on the container): data-symbol, data-resolution,
// data-precision; data-resolution-bar="<id>" binds that element's [data-resolution]
// buttons; data-marks-url=".../__SYMBOL__/marks" marks the user's trades on the chart
// (entry arrow, then the result or the pending expiry), reloaded after every settlement
// and every HTMX swap.
//
// Ticks arrive over the page's one Socket.IO connection (EduTradeX.socket). Several
// charts and widgets may watch the same symbol: EduTradeX.MarketTicks counts the
// subscriptions per symbol so one leaving does not unsubscribe the others.
// Needs js/app.js first, and /static/vendor/lightweight-charts.standalone.production.js
// on pages that draw a chart (MarketTicks alone does without it).
(function () {
  "use strict";

  var EduTradeX = window.EduTradeX = window.EduTradeX || {};

  var RESOLUTIONS = { "1s": 1, "5s": 5, "1m": 60, "5m": 300, "15m": 900, "30m": 1800,
                      "1h": 3600, "4h": 14400, "1d": 86400 };
  var HISTORY_CANDLES = 300;
  var CANDLE_PIXELS = 8;  // room per candle when the history opens; scroll or pinch for more
  var UP = "#16c784", DOWN = "#ea3943", MUTED = "#8b97b0";

  // ---- tick subscriptions, shared by everything on the page ----------------------------
  var MarketTicks = (function () {
    var listeners = {};  // symbol -> array of callbacks
    var socket = EduTradeX.socket || null;
    var board = false;  // watching the whole board: every symbol arrives in one "ticks" message

    function emitSubscribe(symbol) {
      if (socket && !board) socket.emit("subscribe", { symbol: symbol });
    }

    function dispatch(frame) {
      var callbacks = listeners[frame.symbol];
      if (!callbacks) return;
      callbacks.slice().forEach(function (cb) {
        try { cb(frame); } catch (err) { if (window.console) console.error(err); }
      });
    }

    if (socket) {
      socket.on("tick", dispatch);
      socket.on("ticks", function (frames) { frames.forEach(dispatch); });
      // After a reconnect the server has forgotten our rooms: join them again.
      socket.on("connect", function () {
        if (board) socket.emit("subscribe_board");
        else Object.keys(listeners).forEach(emitSubscribe);
      });
      socket.on("error", function (data) {
        if (data && data.message && EduTradeX.toast) EduTradeX.toast(data.message, "error");
      });
    }

    // Returns a function that removes this subscription.
    function subscribe(symbol, callback) {
      var callbacks = listeners[symbol];
      if (!callbacks) {
        callbacks = listeners[symbol] = [];
        if (socket && socket.connected) emitSubscribe(symbol);
      }
      callbacks.push(callback);
      return function unsubscribe() {
        var list = listeners[symbol];
        if (!list) return;
        var i = list.indexOf(callback);
        if (i >= 0) list.splice(i, 1);
        if (!list.length) {
          delete listeners[symbol];
          if (socket && socket.connected && !board) socket.emit("unsubscribe", { symbol: symbol });
        }
      };
    }

    // For pages that show every market: one room and one message per flush for the whole
    // board, instead of a room and a message per symbol. Call before subscribing.
    function watchBoard() {
      if (board) return;
      board = true;
      if (socket && socket.connected) socket.emit("subscribe_board");
    }

    return { subscribe: subscribe, watchBoard: watchBoard, socket: socket };
  })();

  function decimalsOf(value) {
    var text = String(value);
    var dot = text.indexOf(".");
    return dot < 0 ? 0 : text.length - dot - 1;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ---- the chart ------------------------------------------------------------------------
  function MarketChart(container, options) {
    if (!(this instanceof MarketChart)) return new MarketChart(container, options);
    options = options || {};
    this.container = container;
    this.symbol = options.symbol || container.getAttribute("data-symbol");
    this.resolution = RESOLUTIONS[options.resolution] ? options.resolution
      : (RESOLUTIONS[container.getAttribute("data-resolution")] ? container.getAttribute("data-resolution") : "1m");
    this.precision = options.precision !== undefined ? Number(options.precision)
      : (container.hasAttribute("data-precision") ? Number(container.getAttribute("data-precision")) : null);
    this._tickCallbacks = [];
    this._priceLines = [];
    this._last = null;        // the newest candle on screen
    this._pending = [];       // ticks that arrive while history is loading
    this._loading = false;
    this._generation = 0;     // ignores history answers for an old symbol/resolution
    this._unsubscribe = null;
    this._destroyed = false;
    this._marksUrl = options.marksUrl || container.getAttribute("data-marks-url");
    this._trades = [];        // the user's trades on this symbol (see _loadMarks)
    this._markerList = [];

    container.classList.add("market-chart");
    this._legend = el("div", "market-chart-legend");
    this._status = el("div", "market-chart-status", "Loading…");
    this._attribution = el("a", "market-chart-attribution", "Charts by TradingView");
    this._attribution.href = "https://www.tradingview.com/";
    this._attribution.target = "_blank";
    this._attribution.rel = "noopener";
    container.appendChild(this._legend);
    container.appendChild(this._status);
    container.appendChild(this._attribution);

    var LC = window.LightweightCharts;
    this._chart = LC.createChart(container, {
      autoSize: true,
      // The built-in logo injects a <style> element, which the strict CSP blocks; the
      // attribution the licence asks for is the plain link added below instead.
      layout: { background: { type: "solid", color: "#0b0f17" }, textColor: "#8b97b0", attributionLogo: false,
                fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace" },
      grid: { vertLines: { color: "#151c2b" }, horzLines: { color: "#151c2b" } },
      rightPriceScale: { borderColor: "#243049" },
      timeScale: { borderColor: "#243049", timeVisible: true, secondsVisible: true, rightOffset: 4 },
      crosshair: { mode: LC.CrosshairMode.Normal },
    });
    this._series = this._chart.addSeries(LC.CandlestickSeries, {
      upColor: "#16c784", downColor: "#ea3943", borderVisible: false,
      wickUpColor: "#16c784", wickDownColor: "#ea3943",
    });
    this._applyPrecision();
    this._markers = LC.createSeriesMarkers ? LC.createSeriesMarkers(this._series, []) : null;

    var self = this;
    var barId = container.getAttribute("data-resolution-bar");
    if (barId && document.getElementById(barId)) this.bindResolutionBar(document.getElementById(barId));
    if (this._marksUrl) {
      var marksTimer = null;
      this._reloadMarks = function () {
        clearTimeout(marksTimer);
        marksTimer = setTimeout(function () { if (!self._destroyed) self._loadMarks(); }, 200);
      };
      if (MarketTicks.socket) MarketTicks.socket.on("trade_settled", this._reloadMarks);
      document.addEventListener("htmx:afterSettle", this._reloadMarks);
    }
    this._onCrosshair = function (param) { self._showLegend(param); };
    this._chart.subscribeCrosshairMove(this._onCrosshair);
    // Reload history after a reconnect (ticks were missed), not on the first connect.
    var connectedBefore = !!(MarketTicks.socket && MarketTicks.socket.connected);
    this._onReconnect = function () {
      if (connectedBefore && !self._destroyed) self._loadHistory();
      connectedBefore = true;
    };
    if (MarketTicks.socket) MarketTicks.socket.on("connect", this._onReconnect);

    MarketChart.all.push(this);
    this._start();
  }

  MarketChart.RESOLUTIONS = Object.keys(RESOLUTIONS);
  MarketChart.all = [];  // the charts on the page (for tests and the console)

  MarketChart.prototype._applyPrecision = function () {
    if (this.precision === null || isNaN(this.precision)) return;
    this._series.applyOptions({ priceFormat: { type: "price", precision: this.precision,
                                               minMove: Math.pow(10, -this.precision) } });
  };

  MarketChart.prototype._format = function (value) {
    if (value === undefined || value === null) return "–";
    return this.precision === null ? String(value) : Number(value).toFixed(this.precision);
  };

  MarketChart.prototype._showLegend = function (param) {
    var bar = param && param.time !== undefined ? param.seriesData.get(this._series) : null;
    bar = bar || this._last;
    this._legend.textContent = "";
    this._legend.appendChild(el("span", "market-chart-symbol", this.symbol + " · " + this.resolution));
    if (!bar) return;
    var up = bar.close >= bar.open;
    var self = this;
    [["O", bar.open], ["H", bar.high], ["L", bar.low], ["C", bar.close]].forEach(function (pair) {
      var item = el("span", "market-chart-ohlc");
      item.appendChild(el("b", null, pair[0] + " "));
      item.appendChild(el("span", up ? "up" : "down", self._format(pair[1])));
      self._legend.appendChild(item);
    });
    if (param && param.point && param.time !== undefined) {
      var price = this._series.coordinateToPrice(param.point.y);
      if (price !== null) {
        var cross = el("span", "market-chart-ohlc");
        cross.appendChild(el("b", null, "✛ "));
        cross.appendChild(el("span", null, this._format(price)));
        this._legend.appendChild(cross);
      }
    }
  };

  MarketChart.prototype._setStatus = function (text) {
    this._status.textContent = text || "";
    this._status.hidden = !text;
  };

  MarketChart.prototype._start = function () {
    var self = this;
    if (this._unsubscribe) this._unsubscribe();
    var symbol = this.symbol;
    this._unsubscribe = MarketTicks.subscribe(symbol, function (tick) { self._handleTick(tick); });
    this._loadHistory();
  };

  MarketChart.prototype._loadHistory = function () {
    var self = this;
    var generation = ++this._generation;
    var seconds = RESOLUTIONS[this.resolution];
    var to = Math.floor(Date.now() / 1000) + seconds;
    var from = to - seconds * HISTORY_CANDLES;
    this._loading = true;
    this._pending = [];
    this._setStatus("Loading…");
    var url = "/api/markets/" + encodeURIComponent(this.symbol) + "/candles?resolution=" + this.resolution +
      "&from=" + from + "&to=" + to;
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) throw new Error((body && body.error) || "Could not load the price history.");
          return body;
        });
      })
      .then(function (candles) {
        if (generation !== self._generation || self._destroyed) return;
        var bars = candles.map(function (c) {
          return { time: c.time, open: Number(c.open), high: Number(c.high), low: Number(c.low), close: Number(c.close) };
        });
        if (self.precision === null && candles.length) {
          self.precision = decimalsOf(candles[candles.length - 1].close);
          self._applyPrecision();
        }
        self._series.setData(bars);
        self._last = bars.length ? bars[bars.length - 1] : null;
        self._fitRange(bars.length);
        self._loading = false;
        self._setStatus(bars.length ? "" : "Waiting for prices…");
        var pending = self._pending;
        self._pending = [];
        pending.forEach(function (tick) { self._handleTick(tick); });
        self._showLegend(null);
        if (self._marksUrl) self._loadMarks(); else self._drawMarks();
      })
      .catch(function (err) {
        if (generation !== self._generation || self._destroyed) return;
        self._loading = false;
        self._setStatus(err.message || "Could not load the price history.");
      });
  };

  MarketChart.prototype._handleTick = function (tick) {
    if (this._destroyed || tick.symbol !== this.symbol) return;
    if (this._loading) { this._pending.push(tick); return; }
    var seconds = RESOLUTIONS[this.resolution];
    var time = Math.floor(tick.ts_ms / 1000 / seconds) * seconds;
    var mid = Number(tick.mid);
    var high = tick.high !== undefined ? Math.max(Number(tick.high), mid) : mid;
    var low = tick.low !== undefined ? Math.min(Number(tick.low), mid) : mid;
    if (this.precision === null) {
      this.precision = tick.precision !== undefined ? Number(tick.precision) : decimalsOf(tick.mid);
      this._applyPrecision();
    }
    var bar = this._last;
    if (bar && time < bar.time) return;  // older than what is drawn (history overlap)
    var newBar = !bar || time > bar.time;
    if (newBar) {
      bar = { time: time, open: bar ? bar.close : mid, high: high, low: low, close: mid };
      bar.high = Math.max(bar.high, bar.open);
      bar.low = Math.min(bar.low, bar.open);
    } else {
      bar = { time: bar.time, open: bar.open, high: Math.max(bar.high, high), low: Math.min(bar.low, low), close: mid };
    }
    this._last = bar;
    this._series.update(bar);
    if (newBar && this._trades.length) this._drawMarks();  // an expiry may have a bar now
    this._setStatus("");
    this._showLegend(null);
    var callbacks = this._tickCallbacks.slice();
    for (var i = 0; i < callbacks.length; i++) {
      try { callbacks[i](tick); } catch (err) { if (window.console) console.error(err); }
    }
  };

  // Show as many of the newest candles as fit readably (all of them when fewer), the
  // newest in view: about 110 on a desktop, 30 on a phone.
  MarketChart.prototype._fitRange = function (count) {
    if (!count) return;
    var timeScale = this._chart.timeScale();
    var visible = Math.max(30, Math.min(150, Math.floor((this.container.clientWidth || 800) / CANDLE_PIXELS)));
    if (count <= visible) { timeScale.fitContent(); return; }
    timeScale.setVisibleLogicalRange({ from: count - visible, to: count - 1 + 4 });
  };

  // ---- the user's trades as markers -------------------------------------------------------
  MarketChart.prototype._loadMarks = function () {
    var self = this;
    var symbol = this.symbol;
    var url = this._marksUrl.replace("__SYMBOL__", encodeURIComponent(symbol));
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (!body || self._destroyed || symbol !== self.symbol) return;
        self._trades = body.trades || [];
        self._drawMarks();
      })
      .catch(function () { /* marks are a nicety: the chart works without them */ });
  };

  // Entry: an arrow at the entry candle. Expiry: the result (WIN/LOSS/TIE) at the exit
  // candle, or a grey "end" once the candle of a pending expiry is drawn.
  MarketChart.prototype._drawMarks = function () {
    if (!this._markers) return;
    var seconds = RESOLUTIONS[this.resolution];
    var last = this._last ? this._last.time : null;
    var markers = [];
    function at(ms) { return Math.floor(ms / 1000 / seconds) * seconds; }
    this._trades.forEach(function (trade) {
      var up = trade.direction === "UP";
      var entry = at(trade.entry_ms);
      if (last === null || entry > last) return;
      markers.push({ time: entry, position: up ? "belowBar" : "aboveBar", shape: up ? "arrowUp" : "arrowDown",
                     color: up ? UP : DOWN, text: "#" + trade.id, id: "entry-" + trade.id });
      var expiry = at(trade.expires_ms);
      if (expiry > last) return;
      if (trade.result) {
        markers.push({ time: expiry, position: "aboveBar", shape: "circle", text: trade.result,
                       color: trade.result === "WIN" ? UP : (trade.result === "LOSS" ? DOWN : MUTED),
                       id: "result-" + trade.id });
      } else {
        markers.push({ time: expiry, position: "aboveBar", shape: "square", color: MUTED, text: "end",
                       id: "expiry-" + trade.id });
      }
    });
    markers.sort(function (a, b) { return a.time - b.time; });
    this._markerList = markers;
    this._markers.setMarkers(markers);
  };

  // What the chart marks now: [{id, time, text, ...}] (for tests and the console).
  MarketChart.prototype.tradeMarkers = function () {
    return this._markerList.slice();
  };

  // {candles, from, to}: how many candles are loaded and the logical range in view.
  MarketChart.prototype.view = function () {
    var range = this._chart.timeScale().getVisibleLogicalRange();
    return { candles: this._series.data().length, from: range ? range.from : null, to: range ? range.to : null,
             resolution: this.resolution };
  };

  // Wire a group of buttons with data-resolution to this chart; onChange(resolution) after
  // each switch (e.g. to keep the choice in the URL).
  MarketChart.prototype.bindResolutionBar = function (bar, onChange) {
    var self = this;
    var buttons = bar.querySelectorAll("[data-resolution]");
    function mark() {
      buttons.forEach(function (b) {
        var on = b.getAttribute("data-resolution") === self.resolution;
        b.classList.toggle("btn-primary", on);
        b.classList.toggle("btn-ghost", !on);
        b.setAttribute("aria-pressed", on ? "true" : "false");
      });
    }
    buttons.forEach(function (button) {
      button.addEventListener("click", function () {
        self.setResolution(button.getAttribute("data-resolution"));
        mark();
        if (onChange) onChange(self.resolution);
      });
    });
    mark();
  };

  MarketChart.prototype.setSymbol = function (symbol) {
    if (!symbol || symbol === this.symbol) return;
    this.symbol = symbol;
    this._trades = [];
    this._clearPriceLines();
    this._last = null;
    this._series.setData([]);
    if (this._markers) this._markers.setMarkers([]);
    if (this.container.getAttribute("data-precision") === null) this.precision = null;
    this._start();
  };

  MarketChart.prototype.setResolution = function (resolution) {
    if (!RESOLUTIONS[resolution]) throw new Error("Unknown resolution " + resolution);
    if (resolution === this.resolution) return;
    this.resolution = resolution;
    this._last = null;
    this._series.setData([]);
    if (this._markers) this._markers.setMarkers([]);
    this._loadHistory();
  };

  // Returns a handle for removePriceLine. Lines belong to the current symbol: setSymbol
  // removes them.
  MarketChart.prototype.addPriceLine = function (opts) {
    var LC = window.LightweightCharts;
    var line = this._series.createPriceLine({
      price: Number(opts.price), color: opts.color || "#3b82f6", lineWidth: 1,
      lineStyle: LC.LineStyle.Dashed, axisLabelVisible: true, title: opts.title || "",
    });
    this._priceLines.push(line);
    return line;
  };

  MarketChart.prototype.removePriceLine = function (handle) {
    var i = this._priceLines.indexOf(handle);
    if (i < 0) return;
    this._priceLines.splice(i, 1);
    this._series.removePriceLine(handle);
  };

  MarketChart.prototype._clearPriceLines = function () {
    var self = this;
    this._priceLines.forEach(function (line) { self._series.removePriceLine(line); });
    this._priceLines = [];
  };

  // callback(tick) for every tick of the chart's current symbol; returns a function that
  // stops the callbacks.
  MarketChart.prototype.onTick = function (callback) {
    var callbacks = this._tickCallbacks;
    callbacks.push(callback);
    return function () {
      var i = callbacks.indexOf(callback);
      if (i >= 0) callbacks.splice(i, 1);
    };
  };

  MarketChart.prototype.destroy = function () {
    if (this._destroyed) return;
    this._destroyed = true;
    var index = MarketChart.all.indexOf(this);
    if (index >= 0) MarketChart.all.splice(index, 1);
    if (this._unsubscribe) this._unsubscribe();
    if (MarketTicks.socket) MarketTicks.socket.off("connect", this._onReconnect);
    if (this._reloadMarks) {
      if (MarketTicks.socket) MarketTicks.socket.off("trade_settled", this._reloadMarks);
      document.removeEventListener("htmx:afterSettle", this._reloadMarks);
    }
    this._chart.unsubscribeCrosshairMove(this._onCrosshair);
    this._tickCallbacks = [];
    this._priceLines = [];
    this._chart.remove();
    this._legend.remove();
    this._status.remove();
    this._attribution.remove();
    this.container.classList.remove("market-chart");
  };

  EduTradeX.MarketChart = MarketChart;
  EduTradeX.MarketTicks = MarketTicks;
})();
