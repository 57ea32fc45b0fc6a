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
