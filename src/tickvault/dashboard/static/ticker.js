// Ticker page: draw the chart from the bars embedded as JSON (no inline script: the
// Content-Security-Policy allows only the dashboard's own files).
(function () {
  "use strict";
  var chart = document.getElementById("chart"), data = document.getElementById("bars-data");
  if (chart && data) {
    TickvaultChart.draw(chart, JSON.parse(data.textContent), document.getElementById("chart-tip"));
  }
  // splits (S) and dividends (D) under the chart, at their ex-dates among the bars
  var marks = document.querySelectorAll("#action-marks .mark");
  for (var i = 0; i < marks.length; i++) {
    marks[i].style.left = (100 * parseFloat(marks[i].getAttribute("data-position"))) + "%";
  }
})();
