// Machine page: live tag values and the state badge arrive as server-rendered HTML over SSE.
(function () {
  "use strict";
  var live = document.getElementById("machine-live");
  if (!live || !window.EventSource) return;
  var source = new EventSource("/machines/" + live.getAttribute("data-path") + "/events");
  source.addEventListener("live", function (event) {
    live.innerHTML = event.data;
    live.setAttribute("data-updated-ms", String(Date.now()));
  });
})();
