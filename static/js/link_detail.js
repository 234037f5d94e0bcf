// The link page: the response form's fields by kind.
// Show the redirect address or the text page fields, by the chosen response.
(function () {
  var form = document.getElementById("response-form");
  function update() {
    var checked = form.querySelector("[name=response_kind]:checked");
    var kind = checked ? checked.value : "redirect";
    form.querySelectorAll("[data-kind]").forEach(function (el) {
      el.style.display = el.dataset.kind === kind ? "" : "none";
    });
  }
  form.querySelectorAll("[name=response_kind]").forEach(function (el) {
    el.addEventListener("change", update);
  });
  update();
})();
