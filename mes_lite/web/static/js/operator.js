// Operator station: reload when the machine's state, reason, orders or alarms change elsewhere
// (the ingest, another tablet), unless the operator is in the middle of filling a form.
(function () {
  "use strict";
  var station = document.getElementById("station");
  if (!station || !window.EventSource) return;
  var source = new EventSource("/operator/" + station.getAttribute("data-path") + "/events");
  function busy() {
    var el = document.activeElement;
    if (el && /^(INPUT|SELECT|TEXTAREA)$/.test(el.tagName) && el.type !== "radio") return true;
    return document.querySelector('input[type="radio"]:checked:not([data-saved])') !== null;  // a reason picked, not confirmed
  }
  function reload() {
    if (busy()) { setTimeout(reload, 2000); return; }
    window.location.replace(window.location.pathname);
  }
  source.addEventListener("changed", reload);
})();
