// The link action form: settings by type and searchable pickers.
(function () {
  var form = document.getElementById("automation-form");
  var type = form.querySelector("[name=type]");
  // Show only the settings the chosen type uses. Without script every field shows.
  function update() {
    form.querySelectorAll("[data-types]").forEach(function (el) {
      var show = el.dataset.types.split(" ").indexOf(type.value) !== -1;
      el.closest(".field").style.display = show ? "" : "none";
    });
  }
  type.addEventListener("change", update);
  // Searchable pickers: a box above each longer list hides the options that do not match.
  form.querySelectorAll("select[data-types]").forEach(function (select) {
    if (select.options.length < 7) { return; }
    var box = document.createElement("input");
    box.type = "search";
    box.placeholder = "Search…";
    box.className = "picker-search";
    box.setAttribute("aria-label", "Search " + (select.labels[0] ? select.labels[0].textContent : "list"));
    box.dataset.for = select.name;
    box.addEventListener("input", function () {
      var q = box.value.trim().toLowerCase();
      var first = null;
      Array.prototype.forEach.call(select.options, function (opt) {
        var match = !q || opt.value === "" || opt.text.toLowerCase().indexOf(q) !== -1;
        opt.hidden = !match;
        if (match && opt.value !== "" && first === null) { first = opt; }
      });
      if (q && first && !select.multiple) { select.value = first.value; select.dispatchEvent(new Event("change")); }
    });
    select.parentNode.insertBefore(box, select);
  });
  update();
})();
