// paramsched's HTML preview: draws the embedded points as SVG, switches the x unit,
// zooms, and shows the embedded strings of the point nearest the mouse. Values are never
// computed here: the readout shows the strings the page embeds, as they are.
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("paramsched-data").textContent);
  // SVG's namespace, from an inline element, so that the page holds no address at all.
  var NS = document.getElementById("svg-namespace").namespaceURI;
  var LEFT = 84, RIGHT = 18, BAND_ROW = 14, BAND_ROWS = 3, GAP = 14, BOTTOM = 46;
  var LR_HEIGHT = 240, PANEL_HEIGHT = 110, SNAP = 4;
  var plotBox = document.getElementById("plot");
  var readout = document.getElementById("readout");
  var state = { unit: DATA.unit, lo: 0, hi: 1, picked: null, drag: null, layout: null };

  function number(text) {
    return text === "-" || text === "" ? NaN : Number(text);
  }

  // Numbers to draw with, parsed once from the embedded strings.
  DATA.schedules.forEach(function (schedule) {
    schedule.x = {};
    DATA.units.forEach(function (unit) {
      schedule.x[unit] = schedule.cells[DATA.unitColumns[unit]].map(number);
    });
    schedule.curves.forEach(function (curve) {
      curve.y = schedule.cells[curve.column].map(number);
    });
    schedule.boundaries = [];
    schedule.cells.event.forEach(function (event, index) {
      var parts = event.split(", ").filter(function (part) {
        return part && part !== "start" && part !== "end";
      });
      if (parts.length) schedule.boundaries.push({ index: index, text: parts.join(", ") });
    });
  });

  function fullRange() {
    var lo = Infinity, hi = -Infinity;
    DATA.schedules.forEach(function (schedule) {
      var x = schedule.x[state.unit];
      lo = Math.min(lo, x[0]);
      hi = Math.max(hi, x[x.length - 1]);
    });
    if (!(hi > lo)) hi = lo + 1;
    return [lo, hi];
  }

  function reset() {
    var range = fullRange();
    state.lo = range[0];
    state.hi = range[1];
  }

  // The first index whose x is >= value (x ascending).
  function lowerBound(x, value) {
    var low = 0, high = x.length;
    while (low < high) {
      var middle = (low + high) >> 1;
      if (x[middle] < value) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  function nearest(x, value) {
    var index = lowerBound(x, value);
    if (index >= x.length) return x.length - 1;
    if (index > 0 && value - x[index - 1] <= x[index] - value) return index - 1;
    return index;
  }

  function niceStep(span, count) {
    var raw = span / count, power = Math.pow(10, Math.floor(Math.log10(raw)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * power >= raw) return steps[i] * power;
    return 10 * power;
  }

  function ticks(lo, hi, count, whole) {
    var step = niceStep(hi - lo, count);
    if (whole) step = Math.max(1, Math.round(step));
    var out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(v);
    return { values: out, step: step };
  }

  function decimalsFor(step) {
    return Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
  }

  // Tick labels, by the rules of the PNG plot: counts exact below a million, then with
  // the largest's SI suffix; rates as decimals from 0.001 to 10,000, else as a multiple
  // of the largest's power of ten.
  function countLabels(values, step) {
    var largest = Math.max.apply(null, values.map(Math.abs).concat([0]));
    var scales = [[1e12, "T"], [1e9, "B"], [1e6, "M"]], scale = 1, suffix = "";
    for (var i = 0; i < scales.length; i++) {
      if (largest >= scales[i][0]) { scale = scales[i][0]; suffix = scales[i][1]; break; }
    }
    var decimals = decimalsFor(step / scale);
    return values.map(function (v) {
      if (v === 0) return "0";
      var text = (v / scale).toFixed(decimals);
      if (scale === 1) {
        var parts = text.split(".");
        parts[0] = parts[0].replace(/\B(?=(\d{3})+(?!\d))/g, ",");
        text = parts.join(".");
      }
      return text + suffix;
    });
  }

  function rateLabels(values, step) {
    var largest = Math.max.apply(null, values.map(Math.abs).concat([0]));
    var exponent = largest === 0 || (largest >= 1e-3 && largest < 1e4)
      ? 0 : Math.floor(Math.log10(largest));
    var scale = Math.pow(10, exponent);
    var decimals = decimalsFor(step / scale);
    return values.map(function (v) {
      if (Math.abs(v) <= 1e-9 * largest) return "0";
      return (v / scale).toFixed(decimals) + (exponent ? "e" + exponent : "");
    });
  }

  function element(name, attributes, parent, text) {
    var node = document.createElementNS(NS, name);
    Object.keys(attributes).forEach(function (key) { node.setAttribute(key, attributes[key]); });
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  function visibleRange(x) {
    return [Math.max(0, lowerBound(x, state.lo) - 1),
      Math.min(x.length - 1, lowerBound(x, state.hi) + 1)];
  }

  function panelRange(panel) {
    var low = Infinity, high = -Infinity;
    DATA.schedules.forEach(function (schedule) {
      var x = schedule.x[state.unit], range = visibleRange(x);
      schedule.curves.forEach(function (curve) {
        if (curve.panel !== panel.key) return;
        for (var i = range[0]; i <= range[1]; i++) {
          var y = curve.y[i];
          if (y === y) { low = Math.min(low, y); high = Math.max(high, y); }
        }
      });
    });
    if (low === Infinity) return [0, 1];
    var fromZero = panel.key === "lr" || panel.key === "wd" || panel.key === "batch";
    if (fromZero && low >= 0) {
      return [0, high > 0 ? high * 1.08 : 1];
    }
    var span = high - low || Math.abs(high) * 0.1 || 1;
    return [low - span * 0.12, high + span * 0.12];
  }

  function draw() {
    var width = Math.max(480, plotBox.clientWidth || 960);
    var plotWidth = width - LEFT - RIGHT;
    var top = BAND_ROW * BAND_ROWS + 8;
    var panels = DATA.panels.map(function (panel) {
      var height = panel.key === "lr" ? LR_HEIGHT : PANEL_HEIGHT;
      var placed = { key: panel.key, label: panel.label, top: top, height: height };
      top += height + GAP;
      return placed;
    });
    var bottom = top - GAP;
    var height = bottom + BOTTOM;
    var toX = function (x) { return LEFT + (x - state.lo) / (state.hi - state.lo) * plotWidth; };
    state.layout = { plotWidth: plotWidth, top: panels[0].top, bottom: bottom };

    plotBox.textContent = "";
    var svg = element("svg", {
      id: "chart", width: width, height: height, "data-unit": state.unit,
      "data-lo": state.lo, "data-hi": state.hi,
    }, plotBox);
    var defs = element("defs", {}, svg);

    panels.forEach(function (panel, panelIndex) {
      var clip = "clip-" + panelIndex;
      var clipPath = element("clipPath", { id: clip }, defs);
      element("rect", { x: LEFT, y: panel.top, width: plotWidth, height: panel.height }, clipPath);
      var group = element("g", { class: "panel", "data-panel": panel.key }, svg);
      element("rect", {
        class: "frame", x: LEFT, y: panel.top, width: plotWidth, height: panel.height,
      }, group);
      var range = panelRange(panel);
      var toY = function (y) {
        return panel.top + panel.height - (y - range[0]) / (range[1] - range[0]) * panel.height;
      };
      var yTicks = ticks(range[0], range[1], panel.key === "lr" ? 6 : 3, panel.key === "batch");
      var labels = panel.key === "batch"
        ? countLabels(yTicks.values, yTicks.step) : rateLabels(yTicks.values, yTicks.step);
      yTicks.values.forEach(function (value, i) {
        var y = toY(value);
        element("line", { class: "grid", x1: LEFT, x2: LEFT + plotWidth, y1: y, y2: y }, group);
        element("text", { class: "tick y", x: LEFT - 6, y: y + 4 }, group, labels[i]);
      });
      element("text", { class: "panel-label", x: LEFT + 6, y: panel.top + 14 }, group, panel.label);
      var curves = element("g", { "clip-path": "url(#" + clip + ")" }, group);
      DATA.schedules.forEach(function (schedule, scheduleIndex) {
        var x = schedule.x[state.unit], visible = visibleRange(x);
        schedule.curves.forEach(function (curve) {
          if (curve.panel !== panel.key) return;
          var path = [], open = false;
          for (var i = visible[0]; i <= visible[1]; i++) {
            var y = curve.y[i];
            if (y !== y) { open = false; continue; }
            var px = toX(x[i]).toFixed(2), py = toY(y).toFixed(2);
            if (!open) path.push("M" + px + " " + py);
            else if (curve.steps) path.push("H" + px + "V" + py);
            else path.push("L" + px + " " + py);
            open = true;
          }
          var attributes = {
            class: "curve", d: path.join(""), stroke: curve.color, fill: "none",
            "data-curve": curve.column, "data-schedule": scheduleIndex,
          };
          if (curve.dash) attributes["stroke-dasharray"] = curve.dash;
          element("path", attributes, curves);
        });
      });
    });

    // Boundaries across every panel, labelled in rows above the first one.
    var rowEnds = [];
    for (var r = 0; r < BAND_ROWS; r++) rowEnds.push(-Infinity);
    var marks = [];
    DATA.schedules.forEach(function (schedule, scheduleIndex) {
      schedule.boundaries.forEach(function (boundary) {
        var value = schedule.x[state.unit][boundary.index];
        if (value >= state.lo && value <= state.hi) {
          marks.push({ x: toX(value), text: boundary.text, schedule: scheduleIndex });
        }
      });
    });
    marks.sort(function (a, b) { return a.x - b.x; });
    var band = element("g", { id: "boundaries" }, svg);
    marks.forEach(function (mark) {
      var color = DATA.schedules.length > 1 ? DATA.schedules[mark.schedule].color : "#8c8c8c";
      var line = element("line", {
        class: "boundary", x1: mark.x, x2: mark.x, y1: panels[0].top, y2: bottom,
        stroke: color, "data-schedule": mark.schedule, "data-event": mark.text,
      }, band);
      element("title", {}, line, mark.text);
      var textWidth = mark.text.length * 5.8 + 4;
      var left = Math.min(mark.x + 2, LEFT + plotWidth - textWidth);
      for (var row = 0; row < BAND_ROWS; row++) {
        if (left >= rowEnds[row] + 4) {
          rowEnds[row] = left + textWidth;
          var label = element("text", {
            class: "boundary-label", x: left, y: BAND_ROW * (row + 1), fill: color,
          }, band, mark.text);
          element("title", {}, label, mark.text);
          return;
        }
      }
    });

    // The x axis, shared by the panels.
    var xTicks = ticks(state.lo, state.hi, Math.max(3, Math.floor(plotWidth / 110)), true);
    var xLabels = countLabels(xTicks.values, xTicks.step);
    var axis = element("g", { id: "x-axis" }, svg);
    xTicks.values.forEach(function (value, i) {
      var x = toX(value);
      element("line", { class: "tick-mark", x1: x, x2: x, y1: bottom, y2: bottom + 5 }, axis);
      element("text", { class: "tick x", x: x, y: bottom + 18 }, axis, xLabels[i]);
    });
    element("text", {
      id: "x-label", x: LEFT + plotWidth / 2, y: bottom + 38,
    }, axis, DATA.unitLabels[state.unit]);

    element("g", { id: "hover" }, svg);
    element("rect", { id: "selection", x: 0, y: panels[0].top, width: 0, height: 0 }, svg);
    element("rect", {
      id: "plot-area", x: LEFT, y: panels[0].top, width: plotWidth,
      height: bottom - panels[0].top, fill: "transparent",
    }, svg);
    showHover();
  }

  function xAt(clientX) {
    var box = document.getElementById("plot-area").getBoundingClientRect();
    var fraction = Math.min(1, Math.max(0, (clientX - box.left) / box.width));
    return state.lo + fraction * (state.hi - state.lo);
  }

  // The embedded point nearest `value`, or a boundary within SNAP pixels of it (the
  // nearest), so that a boundary can be read at any zoom.
  function pick(schedule, value) {
    var x = schedule.x[state.unit], perPixel = (state.hi - state.lo) / state.layout.plotWidth;
    var best = null, distance = SNAP * perPixel;
    schedule.boundaries.forEach(function (boundary) {
      var away = Math.abs(x[boundary.index] - value);
      if (away <= distance) { best = boundary.index; distance = away; }
    });
    return best === null ? nearest(x, value) : best;
  }

  function onMove(event) {
    var value = xAt(event.clientX);
    state.picked = DATA.schedules.map(function (schedule) { return pick(schedule, value); });
    if (state.drag) {
      var origin = document.getElementById("chart").getBoundingClientRect().left;
      var left = Math.min(state.drag.clientX, event.clientX) - origin;
      var right = Math.max(state.drag.clientX, event.clientX) - origin;
      var selection = document.getElementById("selection");
      selection.setAttribute("x", left);
      selection.setAttribute("width", right - left);
      selection.setAttribute("height", state.layout.bottom - state.layout.top);
    }
    showHover();
    showReadout(value);
  }

  function onDown(event) {
    if (event.button !== 0) return;
    event.preventDefault();
    state.drag = { clientX: event.clientX, value: xAt(event.clientX) };
  }

  function onUp(event) {
    if (!state.drag) return;
    var start = state.drag, end = xAt(event.clientX);
    state.drag = null;
    if (Math.abs(event.clientX - start.clientX) > 4 && end !== start.value) {
      zoomTo(Math.min(start.value, end), Math.max(start.value, end));
    } else {
      document.getElementById("selection").setAttribute("width", 0);
    }
  }

  function zoomTo(low, high) {
    var range = fullRange(), minimum = (range[1] - range[0]) * 1e-9;
    if (high - low < minimum) {
      var middle = (low + high) / 2;
      low = middle - minimum / 2;
      high = middle + minimum / 2;
    }
    state.lo = Math.max(range[0], low);
    state.hi = Math.min(range[1], high);
    draw();
  }

  function onWheel(event) {
    event.preventDefault();
    var centre = xAt(event.clientX), factor = event.deltaY < 0 ? 0.8 : 1.25;
    zoomTo(centre - (centre - state.lo) * factor, centre + (state.hi - centre) * factor);
  }

  function showHover() {
    var group = document.getElementById("hover");
    if (!group || !state.picked) return;
    group.textContent = "";
    DATA.schedules.forEach(function (schedule, index) {
      var value = schedule.x[state.unit][state.picked[index]];
      if (!(value >= state.lo && value <= state.hi)) return;
      var x = LEFT + (value - state.lo) / (state.hi - state.lo) * state.layout.plotWidth;
      element("line", {
        class: "hover-line", x1: x, x2: x, y1: state.layout.top, y2: state.layout.bottom,
        stroke: DATA.schedules.length > 1 ? schedule.color : "#444",
      }, group);
    });
  }

  // The readout: a row per column any schedule has, a cell per schedule.
  var readoutColumns = [];
  DATA.schedules.forEach(function (schedule) {
    Object.keys(schedule.cells).forEach(function (column) {
      if (column !== "event" && readoutColumns.indexOf(column) < 0) readoutColumns.push(column);
    });
  });
  readoutColumns.push("event");

  function buildReadout() {
    readout.textContent = "";
    var caption = document.createElement("caption");
    caption.id = "readout-caption";
    readout.appendChild(caption);
    var head = document.createElement("tr");
    head.appendChild(document.createElement("th"));
    DATA.schedules.forEach(function (schedule, index) {
      var cell = document.createElement("th");
      cell.textContent = DATA.schedules.length > 1 ? schedule.name : "value";  // one: the title
      cell.style.color = DATA.schedules.length > 1 ? schedule.color : "";
      cell.setAttribute("data-schedule", index);
      head.appendChild(cell);
    });
    readout.appendChild(head);
    readoutColumns.forEach(function (column) {
      var row = document.createElement("tr");
      row.setAttribute("data-column", column);
      var name = document.createElement("th");
      name.textContent = column;
      row.appendChild(name);
      DATA.schedules.forEach(function (schedule, index) {
        var cell = document.createElement("td");
        cell.setAttribute("data-schedule", index);
        cell.setAttribute("data-column", column);
        row.appendChild(cell);
      });
      readout.appendChild(row);
    });
  }

  // Where the mouse is, as the table writes counts: whole below a million, then five
  // significant digits and an SI suffix.
  function approximately(value) {
    var scales = [[1e12, "T"], [1e9, "B"], [1e6, "M"]];
    for (var i = 0; i < scales.length; i++) {
      if (Math.abs(value) >= scales[i][0]) {
        return String(Number((value / scales[i][0]).toPrecision(5))) + scales[i][1];
      }
    }
    return countLabels([Math.round(value)], 1)[0];
  }

  function showReadout(value) {
    var caption = document.getElementById("readout-caption");
    caption.textContent = value === undefined ? "values at the start (move over the plot)"
      : "nearest embedded point to " + approximately(value) + " " + state.unit;
    DATA.schedules.forEach(function (schedule, index) {
      var at = state.picked[index];
      readoutColumns.forEach(function (column) {
        var cell = readout.querySelector(
          'td[data-schedule="' + index + '"][data-column="' + column + '"]');
        var cells = schedule.cells[column];
        cell.textContent = cells === undefined ? "" : cells[at];
      });
    });
  }

  function buildControls() {
    var units = document.getElementById("units");
    DATA.units.forEach(function (unit) {
      var label = document.createElement("label");
      var input = document.createElement("input");
      input.type = "radio";
      input.name = "unit";
      input.value = unit;
      input.checked = unit === state.unit;
      input.addEventListener("change", function () {
        state.unit = unit;
        reset();
        draw();
      });
      label.appendChild(input);
      label.appendChild(document.createTextNode(" " + unit));
      units.appendChild(label);
    });
    document.getElementById("reset").addEventListener("click", function () { reset(); draw(); });
    var legend = document.getElementById("legend");
    var seen = {};
    DATA.schedules.forEach(function (schedule, index) {
      schedule.curves.forEach(function (curve) {
        var many = DATA.schedules.length > 1;
        // A comparison names each schedule once (by its lr), and its dashed curves.
        if (many && curve.column !== "lr" && !curve.dash) return;
        var name = !many ? curve.column
          : curve.column === "lr" ? schedule.name : schedule.name + ": " + curve.column;
        if (seen[name]) return;
        seen[name] = true;
        var entry = document.createElement("span");
        entry.className = "entry";
        entry.setAttribute("data-schedule", index);
        entry.setAttribute("data-curve", curve.column);
        var swatch = document.createElementNS(NS, "svg");
        swatch.setAttribute("width", "26");
        swatch.setAttribute("height", "10");
        var line = element("line", {
          x1: 1, x2: 25, y1: 5, y2: 5, stroke: curve.color, "stroke-width": 2,
        }, swatch);
        if (curve.dash) line.setAttribute("stroke-dasharray", curve.dash);
        entry.appendChild(swatch);
        entry.appendChild(document.createTextNode(" " + name));
        legend.appendChild(entry);
      });
    });
  }

  // On the plot's box, which stays while the chart in it is redrawn (a double click's
  // two clicks reach one element).
  function onOverlay(handler) {
    return function (event) { if (event.target.id === "plot-area") handler(event); };
  }
  plotBox.addEventListener("mousemove", onOverlay(onMove));
  plotBox.addEventListener("mousedown", onOverlay(onDown));
  plotBox.addEventListener("wheel", onOverlay(onWheel), { passive: false });
  plotBox.addEventListener("dblclick", onOverlay(function () { reset(); draw(); }));
  window.addEventListener("mouseup", onUp);
  window.addEventListener("resize", draw);
  buildControls();
  buildReadout();
  reset();
  state.picked = DATA.schedules.map(function () { return 0; });
  draw();
  showReadout();
})();
