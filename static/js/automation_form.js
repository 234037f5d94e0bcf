// The automation form: its settings by type and event (moved out of the page for the CSP).
// Show only the settings the chosen type uses, and the link/form narrowing only for
// the event types it applies to. Without script every field shows; the server validates.
(function () {
  var form = document.getElementById("automation-form");
  var type = form.querySelector("[name=type]");
  var trigger = form.querySelector("[name=trigger_event_type]");
  function wrap(el) { return el.closest(".field"); }
  function update() {
    form.querySelectorAll("[data-types]").forEach(function (el) {
      var show = el.dataset.types.split(" ").indexOf(type.value) !== -1;
      wrap(el).style.display = show ? "" : "none";
    });
    form.querySelectorAll("[data-events]").forEach(function (el) {
      var show = el.dataset.events.split(" ").indexOf(trigger.value) !== -1;
      wrap(el).style.display = show ? "" : "none";
      if (!show) { el.value = ""; }
    });
  }
  type.addEventListener("change", update);
  trigger.addEventListener("change", update);
  update();
})();
