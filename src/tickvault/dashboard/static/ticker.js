// Ticker page: draw the chart from the bars embedded as JSON (no inline script: the
// Content-Security-Policy allows only the dashboard's own files).
(function () {
  "use strict";
  var chart = document.getElementById("chart"), data = document.getElementById("bars-data");
  if (chart && data) {
    TickvaultChart.draw(chart, JSON.parse(data.textContent), document.getElementById("chart-tip"));
  }
})();
