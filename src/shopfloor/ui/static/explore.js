// The data explorer's chart: the page's points (a JSON block, not a script) drawn with
// ECharts, one line per name. Without ECharts (assets missing) the table still shows.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const holder = document.getElementById("explore-chart");
  const data = document.getElementById("explore-data");
  if (!holder || !data || typeof echarts === "undefined") return;
  const { series } = JSON.parse(data.textContent);
  const chart = echarts.init(holder);
  chart.setOption({
    animation: false,
    tooltip: { trigger: "axis" },
    legend: { top: 0 },
    grid: { left: 48, right: 16, top: 32, bottom: 32 },
    xAxis: { type: "time" },
    yAxis: { type: "value", scale: true },
    series: Object.entries(series).map(([name, points]) => ({
      name, type: "line", showSymbol: points.length < 60, data: points,
    })),
  });
  holder.dataset.drawn = "true";
  window.addEventListener("resize", () => chart.resize());
});
