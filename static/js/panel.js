// The panels' script: keeps the panel token for this tab and hands it over in a header.
// The token never enters a URL (no access log, history or Referer may see it): without
// htmx the panel asks for a reload instead of falling back to the address bar.
(function () {
  "use strict";
  var STORE = "emhubPanelToken";

  function store(key, value) {
    try {
      if (value === null) { sessionStorage.removeItem(key); } else { sessionStorage.setItem(key, value); }
    } catch (e) { /* storage may be off in a cross-site frame */ }
  }
  function stored(key) {
    try { return sessionStorage.getItem(key); } catch (e) { return null; }
  }

  // Load this panel again with the token in a header. A refused token is not swapped in.
  function open(token) {
    if (!window.htmx) {
      var note = document.getElementById("sign-in-note");
      if (note) { note.textContent = "Signed in. Reload the panel to continue."; }
      return;
    }
    window.htmx.ajax("GET", location.href, {target: "body", swap: "innerHTML",
                                            headers: {"X-Panel-Token": token}});
  }

  function init() {
    // Keep the token of a page that came with one (sessionStorage is per frame origin
    // and, in a cross-site frame, per SuperOffice site).
    var holder = document.getElementById("panel-token");
    var token = holder ? JSON.parse(holder.textContent || '""') : "";
    if (token) { store(STORE, token); }
    // SuperOffice puts <usec> in the panel's address: take it out of the address bar.
    var url = new URL(location.href);
    var changed = false;
    ["usec", "pt"].forEach(function (name) {
      if (url.searchParams.has(name)) { url.searchParams.delete(name); changed = true; }
    });
    if (changed) { history.replaceState(null, "", url); }

    var signIn = document.getElementById("sign-in");
    if (!signIn) { return; }
    var tried = "emhubPanelTried:" + location.pathname + location.search;
    if (signIn.dataset.signedOut) {
      store(STORE, null);
    } else {
      // A token this tab already holds (from a sign-in in another panel): try it once.
      var kept = stored(STORE);
      if (kept && !stored(tried)) {
        store(tried, "1");
        open(kept);
        return;
      }
    }
    store(STORE, null);
    store(tried, null);
    var button = document.getElementById("sign-in-button");
    if (button) {
      button.addEventListener("click", function () {
        window.open(button.dataset.url, "emhub-sign-in", "popup,width=520,height=680");
      });
    }
  }

  window.addEventListener("message", function (event) {
    // Only the hub's own sign-in pop-up (same origin as this frame) can hand over a token.
    if (event.origin !== location.origin || !event.data || event.data.type !== "emhub-panel-token") { return; }
    store(STORE, event.data.token);
    open(event.data.token);
  });
  // After htmx swapped a new page in (a panel loaded with the token), start again.
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.target === document.body) { init(); }
  });
  init();
})();
