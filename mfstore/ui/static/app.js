// mfstore ui: the run-duration chart of a flow page (uPlot). Data comes from a JSON
// block the server wrote (never executed as code).
(function () {
  "use strict";
  var box = document.getElementById("duration-chart");
  var data = document.getElementById("chart-data");
  if (!box || !data || typeof uPlot === "undefined") return;
  var series = JSON.parse(data.textContent);
  var width = Math.min(900, box.parentElement.clientWidth || 900);
  new uPlot({
    title: "Run duration (s) of the runs on this page",
    width: width,
    height: 180,
    series: [{}, { label: "duration (s)", stroke: "#0969da", width: 1.5, points: { size: 5 } }],
    axes: [{}, { label: "s" }],
  }, series, box);
})();
