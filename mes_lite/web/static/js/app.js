// edgefab pages: small helpers, no framework. Adds the CSRF token to fetch() posts made by page scripts.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  window.edgefab = {
    csrfToken: meta ? meta.getAttribute("content") : "",
    post: function (url, body) {
      return fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": window.edgefab.csrfToken, "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(body || {}),
      });
    },
  };
})();
