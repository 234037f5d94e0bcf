// The sign-in pop-up hands the panel token to the frame that opened it, then closes.
(function () {
  "use strict";
  var holder = document.getElementById("panel-token");
  if (!holder || !window.opener) { return; }
  var token = JSON.parse(holder.textContent);
  // Only a window of the hub's own origin (the panel frame) may receive it.
  window.opener.postMessage({type: "emhub-panel-token", token: token}, location.origin);
  window.close();
})();
