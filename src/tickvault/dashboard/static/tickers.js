// Tickers page: submit the filter form as soon as a select changes; record render timing.
(function () {
  "use strict";
  var form = document.getElementById("filters");
  if (form) {
    form.querySelectorAll("select").forEach(function (el) {
      el.addEventListener("change", function () {
        var page = form.querySelector("input[name=page]");
        if (page) { page.remove(); }
        form.submit();
      });
    });
  }
  var table = document.getElementById("tickers-table");
  if (table) {
    // time from navigation start until the table is parsed and laid out (read by the benchmark)
    table.getBoundingClientRect();
    table.dataset.renderedMs = performance.now().toFixed(1);
  }
})();
