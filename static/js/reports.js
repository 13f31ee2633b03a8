// Draws the report charts: each [data-chart] element names a <script type="application/json">
// holding a plotly figure built on the server (reporting/charts.py). No inline script or
// style is needed, so the page keeps CSP script-src/style-src 'self'.
(function () {
  "use strict";

  function draw(element) {
    const source = document.getElementById(element.getAttribute("data-chart"));
    if (!source || !window.Plotly) {
      return;
    }
    const figure = JSON.parse(source.textContent);
    const layout = Object.assign({}, figure.layout || {}, { autosize: true });
    window.Plotly.newPlot(element, figure.data || [], layout, {
      displaylogo: false,
      responsive: true,
      modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"],
    });
    element.setAttribute("data-drawn", "true");
  }

  // PNG of a chart, drawn by plotly in the browser from the figure on the page.
  function downloadPng(button) {
    const element = document.querySelector(
      "[data-chart='" + button.getAttribute("data-chart-png") + "']"
    );
    if (!element || !window.Plotly || element.getAttribute("data-drawn") !== "true") {
      return;
    }
    window.Plotly.downloadImage(element, {
      format: "png",
      filename: button.getAttribute("data-filename") || "chart",
      width: Math.max(element.clientWidth, 800),
      height: element.clientHeight || 400,
    });
  }

  function start() {
    document.querySelectorAll("[data-chart]").forEach(draw);
    document.querySelectorAll("[data-chart-png]").forEach(function (button) {
      button.addEventListener("click", function () {
        downloadPng(button);
      });
    });
    // Filters apply as soon as the split, campaign, channel or events switch changes.
    const form = document.getElementById("report-filters");
    if (form) {
      form.querySelectorAll("select, input[type=radio]").forEach(function (select) {
        select.addEventListener("change", function () {
          form.requestSubmit();
        });
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
