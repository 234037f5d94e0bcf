// Behaviour the pages ask for with data attributes, so no page needs an inline script or
// handler (the Content-Security-Policy allows scripts from the hub's own files only):
//   <select data-submit-on-change>          sends its form when the choice changes
//   <form data-confirm="Delete this?">     asks before sending
//   <span data-width="40">                  a bar filled to 40 %
//   <canvas data-chart-data="ID" ...>       a Chart.js chart of the JSON in #ID
//   <input type=radio data-controls="ID">   #ID shows only while the chosen value is
//                                           its data-shown-when
// Content htmx swaps in gets the same treatment.
(function () {
  "use strict";

  function each(root, selector, fn) {
    if (root.matches && root.matches(selector)) { fn(root); }
    Array.prototype.forEach.call(root.querySelectorAll(selector), fn);
  }

  var chartLoading = null;
  function withChart(src, done) {
    if (window.Chart) { done(); return; }
    if (!chartLoading) {
      chartLoading = [];
      var script = document.createElement("script");
      script.src = src;
      script.onload = function () { chartLoading.forEach(function (fn) { fn(); }); };
      document.head.appendChild(script);
    }
    chartLoading.push(done);
  }

  function drawChart(canvas) {
    if (canvas.dataset.drawn) { return; }
    withChart(canvas.dataset.chartLib, function () {
      if (canvas.dataset.drawn) { return; }
      canvas.dataset.drawn = "1";
      var data = JSON.parse(document.getElementById(canvas.dataset.chartData).textContent);
      new window.Chart(canvas, {
        type: canvas.dataset.chartType || "bar",
        data: data,
        options: {responsive: true, maintainAspectRatio: false, animation: false,
                  plugins: {legend: {display: data.datasets.length > 1}},
                  scales: {y: {beginAtZero: true, ticks: {precision: 0}}}}
      });
    });
  }

  function showControlled(input) {
    var target = document.getElementById(input.dataset.controls);
    if (!target || !input.form) { return; }
    var chosen = input.form.querySelector("input[name='" + input.name + "']:checked");
    target.hidden = !chosen || chosen.value !== target.dataset.shownWhen;
  }

  function apply(root) {
    each(root, "[data-width]", function (el) { el.style.width = el.dataset.width + "%"; });
    each(root, "canvas[data-chart-data]", drawChart);
    each(root, "input[data-controls]", showControlled);
  }

  document.addEventListener("change", function (event) {
    if (event.target.dataset && event.target.dataset.controls) { showControlled(event.target); }
    var select = event.target.closest && event.target.closest("[data-submit-on-change]");
    if (select && select.form) { select.form.requestSubmit(); }
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);
  // A "Copy" button copies the text of the element its data-copy selector names.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-copy]");
    if (!button) { return; }
    var source = document.querySelector(button.dataset.copy);
    if (!source || !navigator.clipboard) { return; }
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      button.textContent = "Copied";
      window.setTimeout(function () { button.textContent = "Copy"; }, 2000);
    });
  });
  document.addEventListener("htmx:load", function (event) { apply(event.detail.elt); });
  apply(document);
})();
