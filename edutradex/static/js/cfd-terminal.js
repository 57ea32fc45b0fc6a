// CFD trading terminal of a competition: the chart with entry / SL / TP lines, the order
// ticket with its preview (margin required, P&L at SL and TP, from the server's margin.py),
// the tabs, live P&L per position and the account bar revalued on every tick.
// The server decides everything; this file displays. Figures shown live are revalued here
// in floating point from the ticks (display only); every fill and every figure stored is the
// server's, and the book is fetched again after each change.
(function () {
  "use strict";

  var page = document.getElementById("cfd-terminal");
  if (!page || !window.EduTradeX) return;
  var EduTradeX = window.EduTradeX;
  var symbol = page.getAttribute("data-symbol");
  var precision = Number(page.getAttribute("data-precision"));
  var quotes = {};     // symbol -> {bid, ask, mid} (Numbers), from the tick stream
  var watching = {};   // symbol -> unsubscribe
  var lines = [];      // chart price lines drawn for the book

  function num(text) {
    if (text === null || text === undefined || String(text).trim() === "") return null;
    var n = Number(text);
    return isFinite(n) ? n : null;
  }

  function signed(n) {
    return (n > 0 ? "+" : n < 0 ? "−" : "") + EduTradeX.formatMoney(Math.abs(n));
  }

  // ---- chart ------------------------------------------------------------------------------
  var chart = null;
  var chartEl = document.getElementById("trade-chart");
  if (chartEl && EduTradeX.MarketChart && window.LightweightCharts) {
    chart = new EduTradeX.MarketChart(chartEl, { symbol: symbol, resolution: chartEl.getAttribute("data-resolution") || "5s" });
  }

  var picker = document.getElementById("symbol-picker");
  if (picker) {
    picker.addEventListener("change", function () {
      window.location.href = page.getAttribute("data-trade-url") + "?symbol=" + encodeURIComponent(picker.value);
    });
  }

  function drawLines() {
    if (!chart) return;
    lines.forEach(function (line) { chart.removePriceLine(line); });
    lines = [];
    function add(price, color, title) {
      if (price === null) return;
      lines.push(chart.addPriceLine({ price: price, color: color, title: title }));
    }
    document.querySelectorAll("#cfd-positions .cfd-position").forEach(function (row) {
      if (row.getAttribute("data-symbol") !== symbol) return;
      var id = "#" + row.getAttribute("data-id");
      var buy = row.getAttribute("data-side") === "BUY";
      add(num(row.getAttribute("data-open")), buy ? "#3b82f6" : "#f59e0b", (buy ? "Buy " : "Sell ") + id);
      add(num(row.getAttribute("data-stop-loss")), "#ea3943", "SL " + id);
      add(num(row.getAttribute("data-take-profit")), "#16c784", "TP " + id);
    });
    document.querySelectorAll("#cfd-orders .cfd-order").forEach(function (row) {
      if (row.getAttribute("data-symbol") !== symbol) return;
      var id = "#" + row.getAttribute("data-id");
      var kind = (row.getAttribute("data-side") === "BUY" ? "Buy " : "Sell ") + row.getAttribute("data-order-type").toLowerCase();
      add(num(row.getAttribute("data-price")), "#8b97b0", kind + " " + id);
      add(num(row.getAttribute("data-stop-loss")), "#ea3943", "SL " + id);
      add(num(row.getAttribute("data-take-profit")), "#16c784", "TP " + id);
    });
  }

  // ---- ticks ------------------------------------------------------------------------------
  function watch(sym) {
    if (!sym || watching[sym] || !EduTradeX.MarketTicks) return;
    watching[sym] = EduTradeX.MarketTicks.subscribe(sym, function (tick) {
      quotes[sym] = { bid: Number(tick.bid), ask: Number(tick.ask), mid: Number(tick.mid) };
      if (sym === symbol) showQuote(tick);
      revalue();
      checkTriggers(sym);
    });
  }

  function showQuote(tick) {
    var bid = document.getElementById("live-bid");
    var ask = document.getElementById("live-ask");
    if (bid) bid.textContent = Number(tick.bid).toFixed(precision);
    if (ask) ask.textContent = Number(tick.ask).toFixed(precision);
  }

  function watchBook() {
    watch(symbol);
    var conversion = page.getAttribute("data-conversion");
    if (conversion && conversion !== symbol) watch(conversion);
    document.querySelectorAll("#cfd-positions .cfd-position, #cfd-orders .cfd-order").forEach(function (row) {
      watch(row.getAttribute("data-symbol"));
      var conv = row.getAttribute("data-conversion");
      if (conv && conv !== row.getAttribute("data-symbol")) watch(conv);
    });
  }

  // ---- live P&L and the account bar -------------------------------------------------------
  // margin.py's formulas: longs valued at the bid, shorts at the ask; profit in the quote
  // currency divided by USD/<quote> (the pair's own price for USD/JPY).
  function positionPnl(row) {
    var sym = row.getAttribute("data-symbol");
    var q = quotes[sym];
    if (!q) return null;
    var buy = row.getAttribute("data-side") === "BUY";
    var price = buy ? q.bid : q.ask;
    var open = Number(row.getAttribute("data-open"));
    var move = buy ? price - open : open - price;
    var amount = move * Number(row.getAttribute("data-lots")) * Number(row.getAttribute("data-contract-size"));
    var conv = row.getAttribute("data-conversion");
    if (conv) {
      var rate = conv === sym ? price : (quotes[conv] ? quotes[conv].mid : null);
      if (!rate) return null;
      amount = amount / rate;
    }
    return { price: price, pnl: Math.round(amount * 100) / 100 };
  }

  function revalue() {
    var bar = document.getElementById("cfd-account");
    var total = 0, complete = true;
    document.querySelectorAll("#cfd-positions .cfd-position").forEach(function (row) {
      var value = positionPnl(row);
      if (!value) { complete = false; return; }
      total += value.pnl;
      var now = row.querySelector(".cfd-now");
      if (now) now.textContent = value.price.toFixed(Number(row.getAttribute("data-precision")));
      var cell = row.querySelector(".cfd-pnl");
      if (cell) {
        cell.textContent = (value.pnl > 0 ? "+" : value.pnl < 0 ? "-" : "+") + Math.abs(value.pnl).toFixed(2);
        cell.classList.toggle("up", value.pnl > 0);
        cell.classList.toggle("down", value.pnl < 0);
      }
    });
    if (!bar || !complete) return;
    var balance = Number(bar.getAttribute("data-balance"));
    var used = Number(bar.getAttribute("data-used-margin"));
    showFigures(bar, balance + total, used);
  }

  function showFigures(bar, equity, used) {
    var level = used > 0 ? equity / used * 100 : null;
    setText("cfd-equity", EduTradeX.formatMoney(equity));
    // The header's badge shows this account's equity too.
    var badge = document.querySelector("[data-testid=account-balance]");
    if (badge && badge.firstChild && badge.firstChild.nodeType === 3) badge.firstChild.nodeValue = EduTradeX.formatMoney(equity) + " ";
    setText("cfd-free-margin", EduTradeX.formatMoney(equity - used));
    // The rule set's nearest loss floor (rules.py): how far the equity is above it.
    var rule = document.getElementById("cfd-rule-distance");
    if (rule) {
      var floor = Number(rule.getAttribute("data-floor"));
      setText("cfd-rule-distance", EduTradeX.formatMoney(floor) + " · " + EduTradeX.formatMoney(equity - floor) + " away");
    }
    setText("cfd-margin-level", level === null ? "—" : EduTradeX.formatMoney(level) + " %");
    var call = Number(bar.getAttribute("data-margin-call"));
    var stop = Number(bar.getAttribute("data-stop-out"));
    var state = level === null ? "ok" : level < stop ? "danger" : level < call ? "warning" : "ok";
    bar.setAttribute("data-level", state);
    setText("cfd-level-note", state === "danger" ? "Below the " + stop.toFixed(2) + " % stop-out level: positions are being closed."
      : state === "warning" ? "Margin call: the margin level is under " + call.toFixed(2) + " %. At " + stop.toFixed(2) +
        " % the largest loss is closed." : "");
  }

  function setText(id, text) {
    var el = document.getElementById(id);
    if (el && el.textContent !== text) el.textContent = text;
  }

  // ---- the book: fetched again after the engine fills something ------------------------
  var refreshTimer = null;
  var lastFired = {};  // row id -> time its trigger last asked for a refresh

  function refreshBook(delay) {
    if (refreshTimer || !window.htmx) return;
    refreshTimer = setTimeout(function () {
      refreshTimer = null;
      window.htmx.ajax("GET", page.getAttribute("data-book-url"), { target: "#cfd-account", swap: "none" });
    }, delay || 0);
  }

  // Without the engine's frames the page still notices its fills: a tick that crosses a
  // stop-loss, take-profit or pending order fetches the book a moment later.
  function checkTriggers(sym) {
    var q = quotes[sym];
    var now = Date.now();
    function fire(id) {
      if (lastFired[id] && now - lastFired[id] < 5000) return;
      lastFired[id] = now;
      refreshBook(1200);
    }
    document.querySelectorAll("#cfd-positions .cfd-position").forEach(function (row) {
      if (row.getAttribute("data-symbol") !== sym) return;
      var buy = row.getAttribute("data-side") === "BUY";
      var price = buy ? q.bid : q.ask;  // a long's SL/TP on the bid, a short's on the ask
      var sl = num(row.getAttribute("data-stop-loss")), tp = num(row.getAttribute("data-take-profit"));
      if ((sl !== null && (buy ? price <= sl : price >= sl)) || (tp !== null && (buy ? price >= tp : price <= tp))) {
        fire("p" + row.getAttribute("data-id"));
      }
    });
    document.querySelectorAll("#cfd-orders .cfd-order").forEach(function (row) {
      if (row.getAttribute("data-symbol") !== sym) return;
      var buy = row.getAttribute("data-side") === "BUY";
      var level = num(row.getAttribute("data-price"));
      var limit = row.getAttribute("data-order-type") === "LIMIT";
      var crossed = buy ? (limit ? q.ask <= level : q.ask >= level) : (limit ? q.bid >= level : q.bid <= level);
      if (level !== null && crossed) fire("o" + row.getAttribute("data-id"));
    });
  }

  // The engine's frames for this account (room user:<id>, event cfd_account): {event,
  // competition_id, participant_id, equity, free_margin, margin_level, ...}. Its figures
  // are shown as they come; a fill, close or expiry fetches the book again.
  var ENGINE_NEWS = {
    order_filled: ["Your pending order filled.", "success"],
    position_closed: ["A position was closed.", "info"],
    stop_out: ["Stop-out: the margin level fell below the stop-out level; the largest loss was closed.", "error"],
    negative_balance: ["Negative-balance protection: every position was closed and the account set to 0.", "error"],
    order_expired: ["A pending order expired.", "info"],
    order_rejected: ["A pending order triggered but could not fill (not enough free margin).", "warning"],
    margin_call: ["Margin call: your margin level is under the margin-call level.", "warning"],
    rule_breach: ["You broke a rule of this competition (see its Rules).", "error"],
  };
  var CLOSED_BY = { STOP_LOSS: "its stop-loss", TAKE_PROFIT: "its take-profit", STOP_OUT: "the stop-out",
                    NEGATIVE_BALANCE: "negative-balance protection", COMPETITION_END: "the end of the competition",
                    REBUY: "your rebuy" };
  var competitionId = Number(page.getAttribute("data-competition-id"));
  if (EduTradeX.socket) {
    EduTradeX.socket.on("cfd_account", function (frame) {
      if (!frame || Number(frame.competition_id) !== competitionId) return;
      var bar = document.getElementById("cfd-account");
      if (bar && frame.equity !== undefined && frame.equity !== null && frame.free_margin !== undefined) {
        showFigures(bar, Number(frame.equity), Number(frame.equity) - Number(frame.free_margin));
      }
      var news = ENGINE_NEWS[frame.event];
      if (frame.event === "position_closed" && CLOSED_BY[frame.reason]) {
        news = ["Position #" + frame.position_id + " closed by " + CLOSED_BY[frame.reason] + ".", "info"];
      }
      if (frame.event === "rule_breach" && frame.detail) {
        news = [(frame.disqualified ? "Disqualified: " : "Rule broken: ") + frame.detail + ".", "error"];
      }
      if (news) EduTradeX.toast(news[0], news[1]);
      if (frame.event && frame.event !== "margin_call") refreshBook(100);
    });
    EduTradeX.socket.on("connect", function () { refreshBook(300); });  // missed frames while away
  }
  // A safety net for missed news; never while the trader is editing a row (the swap would
  // close the form under their fingers).
  setInterval(function () {
    if (!document.hidden && !document.querySelector(".cfd-edit[open]")) refreshBook(0);
  }, 30000);

  // ---- tabs ---------------------------------------------------------------------------------
  var currentTab = "cfd-positions";
  var tabs = document.querySelectorAll(".cfd-tabs [role=tab]");

  function showTab(panelId) {
    currentTab = panelId;
    tabs.forEach(function (tab) {
      var on = tab.getAttribute("aria-controls") === panelId;
      tab.setAttribute("aria-selected", on ? "true" : "false");
      tab.tabIndex = on ? 0 : -1;
    });
    document.querySelectorAll(".cfd-panel").forEach(function (panel) { panel.hidden = panel.id !== panelId; });
  }
  tabs.forEach(function (tab, index) {
    tab.addEventListener("click", function () { showTab(tab.getAttribute("aria-controls")); });
    tab.addEventListener("keydown", function (evt) {
      var step = evt.key === "ArrowRight" ? 1 : evt.key === "ArrowLeft" ? -1 : 0;
      if (!step) return;
      var next = tabs[(index + step + tabs.length) % tabs.length];
      showTab(next.getAttribute("aria-controls"));
      next.focus();
    });
  });

  // ---- the order ticket -----------------------------------------------------------------
  var form = document.getElementById("cfd-order-form");
  var submit = document.getElementById("cfd-submit");
  var previewTimer = null;

  function field(name) { return form.elements[name]; }
  function side() { var checked = form.querySelector("input[name=side]:checked"); return checked ? checked.value : "BUY"; }

  var HINTS = { BUY: { LIMIT: "at or below the ask", STOP: "above the ask" },
                SELL: { LIMIT: "at or above the bid", STOP: "below the bid" } };

  function updateTicket() {
    var type = field("order_type").value;
    var buy = side() === "BUY";
    document.getElementById("price-field").hidden = type === "MARKET";
    document.getElementById("expiry-field").hidden = type === "MARKET";
    setText("price-hint", HINTS[side()][type] || "");
    var lots = field("lots").value.trim() || "?";
    var what = type === "MARKET" ? "at market" : type.toLowerCase() + " at " + (field("price").value.trim() || "?");
    submit.textContent = (buy ? "Buy " : "Sell ") + lots + " lots " + what;
    submit.classList.toggle("btn-up", buy);
    submit.classList.toggle("btn-down", !buy);
  }

  function showPreview(data) {
    setText("preview-price", data.price ? Number(data.price).toFixed(precision) : "—");
    setText("preview-margin", data.required_margin ? EduTradeX.formatMoney(data.required_margin) + " USD" : "—");
    setText("preview-free", data.free_margin ? EduTradeX.formatMoney(data.free_margin) + " USD" : "—");
    var marginEl = document.getElementById("preview-margin");
    if (marginEl) marginEl.classList.toggle("down", data.fits === false);
    setText("preview-message", data.fits === false ? "More than your free margin: this order would be refused."
      : (data.message || ""));
    [["pnl-sl", data.pnl_at_stop_loss, "at SL"], ["pnl-tp", data.pnl_at_take_profit, "at TP"]].forEach(function (item) {
      var el = document.getElementById(item[0]);
      if (!el) return;
      el.textContent = item[1] === null || item[1] === undefined ? "" : signed(Number(item[1])) + " USD " + item[2];
      el.classList.toggle("up", Number(item[1]) > 0);
      el.classList.toggle("down", Number(item[1]) < 0);
    });
  }

  var previewSeq = 0;  // answers can cross: only the latest request's is shown
  function fetchPreview() {
    var seq = ++previewSeq;
    var params = new URLSearchParams();
    ["symbol", "order_type", "lots", "price", "stop_loss", "take_profit", "leverage"].forEach(function (name) {
      params.set(name, field(name).value);
    });
    params.set("side", side());
    fetch(page.getAttribute("data-preview-url") + "?" + params.toString(),
          { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) { if (data && seq === previewSeq) showPreview(data); })
      .catch(function () { /* the preview is a help: the order is checked when sent */ });
  }

  function schedulePreview(delay) {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(fetchPreview, delay);
  }

  // Lots checked as they are typed, with the server's words (it checks again): in units of
  // 0.0001 lot, so the step test is exact.
  function tenThousandths(text) {
    var match = /^\s*(\d{1,12})(?:\.(\d{0,4}))?\s*$/.exec(text || "");
    if (!match) return null;
    return Number(match[1]) * 10000 + Number(((match[2] || "") + "0000").slice(0, 4));
  }

  function lotsProblem() {
    var text = field("lots").value.trim();
    if (!text) return null;  // the server says "enter a number" when it is sent empty
    var lots = tenThousandths(text);
    var name = form.getAttribute("data-market-name");
    var min = form.getAttribute("data-lot-min"), step = form.getAttribute("data-lot-step"), max = form.getAttribute("data-lot-max");
    if (lots === null) return "Lots: enter a number, e.g. " + min + ".";
    if (lots < tenThousandths(min)) return "Lots: at least " + min + " on " + name + ".";
    if (lots > tenThousandths(max)) return "Lots: must be at most " + max + ".";
    if (lots % tenThousandths(step)) return "Lots: in steps of " + step + " on " + name + ".";
    return null;
  }

  function checkLots() {
    var slot = document.getElementById("lots-error");
    if (slot) slot.textContent = lotsProblem() || "";
  }

  function markInvalid() {
    ["side", "order_type", "lots", "price", "expires_at", "stop_loss", "take_profit", "leverage"].forEach(function (name) {
      var slot = document.getElementById(name + "-error");
      var input = document.getElementById(name);
      if (input) input.setAttribute("aria-invalid", slot && slot.textContent.trim() ? "true" : "false");
    });
  }

  if (form) {
    form.addEventListener("input", function (evt) {
      // A changed field's old message no longer applies.
      var slot = evt.target.name && document.getElementById(evt.target.name + "-error");
      if (slot) slot.textContent = "";
      if (evt.target.name === "lots") checkLots();
      markInvalid();
      updateTicket();
      schedulePreview(250);
    });
    form.addEventListener("change", function () { updateTicket(); schedulePreview(0); });
    updateTicket();
    fetchPreview();
    // The margin moves with the price: refresh the figures while the page is watched.
    setInterval(function () { if (!document.hidden) fetchPreview(); }, 3000);
  }

  // ---- after every swap: tabs, lines, ticks, figures ------------------------------------
  document.body.addEventListener("htmx:oobAfterSwap", markInvalid);
  document.body.addEventListener("htmx:afterSettle", function () {
    showTab(currentTab);
    watchBook();
    drawLines();
    revalue();
    if (form) schedulePreview(100);
  });

  showTab(currentTab);
  watchBook();
  drawLines();
})();
