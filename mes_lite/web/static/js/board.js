// Andon board: tiles arrive as server-rendered HTML over SSE; stop clocks tick here once a second.
(function () {
  "use strict";
  var boardEl = document.getElementById("board");
  var statusEl = document.getElementById("live-status");
  var clockEl = document.getElementById("board-clock");
  var locale = document.body.getAttribute("data-locale") || "zh-CN";

  function pad(n) { return n < 10 ? "0" + n : "" + n; }
  function clockText(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    return h ? h + ":" + pad(m) + ":" + pad(s) : m + ":" + pad(s);
  }
  function tick() {
    var now = Date.now();
    var clocks = boardEl.querySelectorAll(".stop-clock[data-since-ms]");
    for (var i = 0; i < clocks.length; i++) {
      var since = parseInt(clocks[i].getAttribute("data-since-ms"), 10);
      if (!isNaN(since)) clocks[i].textContent = clockText((now - since) / 1000);
    }
    var d = new Date();
    var options = { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false };
    var tz = clockEl.getAttribute("data-tz");
    if (tz) options.timeZone = tz;  // the plant's time, whatever the TV's own setting
    clockEl.textContent = d.toLocaleTimeString(locale, options);
  }
  function setLive(live) {
    statusEl.setAttribute("data-live", live ? "true" : "false");
    statusEl.textContent = statusEl.getAttribute(live ? "data-text-live" : "data-text-offline");
  }

  var scope = boardEl.getAttribute("data-scope");
  var url = "/board/events" + (scope ? "?scope=" + encodeURIComponent(scope) : "");
  var source = new EventSource(url);
  source.addEventListener("tiles", function (event) {
    boardEl.innerHTML = event.data;
    boardEl.setAttribute("data-updated-ms", String(Date.now()));
    tick();
  });
  source.onopen = function () { setLive(true); };
  source.onerror = function () { setLive(false); };
  tick();
  setInterval(tick, 1000);
})();
