// tickvault candlestick chart: a small SVG renderer with no dependencies.
//
// TickvaultChart.draw(container, bars, tip) draws candles (price pane) and volume bars
// (volume pane) for columnar bars {timestamp: [...], open: [...], high, low, close, volume}.
// When there are more bars than pixels allow, consecutive bars are merged into OHLC buckets
// (open of the first, high max, low min, close of the last, volume sum). The server sends at
// most a few thousand candles: for a long range they are already merged, and then carry
// timestamp_end (their last bar) and bars (how many bars each holds), which the tooltip
// shows. Intraday bars may carry timestamp_local (and timestamp_end_local): the times in
// the exchange's zone, with the zone, which the axis and the tooltip show. After drawing, the container carries data-rendered="true", data-points (candles
// drawn) and data-bars (input candles), which the browser tests read.
(function (global) {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var HEIGHT = 440, M = { top: 10, right: 64, bottom: 24, left: 8 }, GAP = 10;

  function el(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    for (var k in attrs) { node.setAttribute(k, attrs[k]); }
    if (parent) { parent.appendChild(node); }
    return node;
  }

  function niceTicks(lo, hi, count) {
    if (!(hi > lo)) { hi = lo + 1; lo = lo - 1; }
    var span = hi - lo, step = Math.pow(10, Math.floor(Math.log10(span / count)));
    var err = span / count / step;
    if (err >= 7.5) { step *= 10; } else if (err >= 3.5) { step *= 5; } else if (err >= 1.5) { step *= 2; }
    var out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * span; v += step) { out.push(v); }
    return { ticks: out, step: step };
  }

  var LABEL_GAP = 12;  // px between two time labels

  function textWidth(node, fallback) {
    try {
      var w = node.getBBox().width;
      return w > 0 ? w : fallback;
    } catch (e) {
      return fallback;  // not laid out (hidden): the caller's estimate
    }
  }

  function measure(axis, text) {
    var probe = el("text", { x: 0, y: HEIGHT - 6 }, axis);
    probe.textContent = text;
    var w = textWidth(probe, 7 * text.length);
    axis.removeChild(probe);
    return w;
  }

  function fmtNum(v, step) {
    var d = step >= 1 ? 0 : Math.min(6, Math.ceil(-Math.log10(step)));
    return v.toFixed(d);
  }

  function fmtVol(v) {
    if (v >= 1e9) { return (v / 1e9).toFixed(1) + "B"; }
    if (v >= 1e6) { return (v / 1e6).toFixed(1) + "M"; }
    if (v >= 1e3) { return (v / 1e3).toFixed(1) + "K"; }
    return String(Math.round(v));
  }

  var LOCAL = {};  // ISO UTC time -> the exchange's local time, for intraday bars

  function fmtDate(iso) {
    if (LOCAL[iso]) { return LOCAL[iso]; }
    // midnight UTC is a daily bar: show the date; otherwise date and time (UTC)
    if (iso.length >= 19 && iso.substr(11, 8) !== "00:00:00") { return iso.substr(0, 16).replace("T", " "); }
    return iso.substr(0, 10);
  }

  // a narrow chart's time label: an intraday bar's month-day and time (the zone is named
  // on the page and in the tooltip); a daily bar's date
  function fmtShort(iso) {
    var full = fmtDate(iso), m = /^\d{4}-(\d\d-\d\d) (\d\d:\d\d)/.exec(full);
    return m ? m[1] + " " + m[2] : full;
  }

  function bucket(bars, maxCandles) {
    var n = bars.timestamp.length, k = Math.max(1, Math.ceil(n / maxCandles));
    var ends = bars.timestamp_end || bars.timestamp;
    var out = { t: [], t1: [], o: [], h: [], l: [], c: [], v: [], n: [] };
    for (var i = 0; i < n; i += k) {
      var j = Math.min(n, i + k), hi = -Infinity, lo = Infinity, vol = 0, count = 0;
      for (var m = i; m < j; m++) {
        if (bars.high[m] > hi) { hi = bars.high[m]; }
        if (bars.low[m] < lo) { lo = bars.low[m]; }
        vol += bars.volume[m] || 0;
        count += bars.bars ? bars.bars[m] : 1;
      }
      out.t.push(bars.timestamp[i]); out.t1.push(ends[j - 1]);
      out.o.push(bars.open[i]); out.c.push(bars.close[j - 1]);
      out.h.push(hi); out.l.push(lo); out.v.push(vol); out.n.push(count);
    }
    out.per = k;
    return out;
  }

  function draw(container, bars, tip) {
    container.innerHTML = "";
    LOCAL = {};
    [["timestamp", "timestamp_local"], ["timestamp_end", "timestamp_end_local"]].forEach(function (p) {
      if (bars && bars[p[0]] && bars[p[1]]) {
        for (var q = 0; q < bars[p[0]].length; q++) { LOCAL[bars[p[0]][q]] = bars[p[1]][q]; }
      }
    });
    var n = bars && bars.timestamp ? bars.timestamp.length : 0;
    var width = Math.max(320, container.clientWidth || 800);
    var svg = el("svg", { viewBox: "0 0 " + width + " " + HEIGHT, width: width, height: HEIGHT,
                          role: "img", "aria-label": "price chart" }, container);
    if (n === 0) {
      el("text", { x: width / 2, y: HEIGHT / 2, "text-anchor": "middle", "class": "muted" }, svg)
        .textContent = "No bars in this range";
      container.dataset.points = "0"; container.dataset.bars = "0"; container.dataset.rendered = "true";
      return;
    }
    var plotW = width - M.left - M.right;
    var d = bucket(bars, Math.max(10, Math.floor(plotW / 3)));
    var count = d.t.length, slot = plotW / count;
    var body = Math.max(1, Math.min(14, slot * 0.7));
    var priceH = Math.round((HEIGHT - M.top - M.bottom - GAP) * 0.75);
    var volTop = M.top + priceH + GAP, volH = HEIGHT - M.bottom - volTop;
    var lo = Math.min.apply(null, d.l), hi = Math.max.apply(null, d.h);
    var pad = (hi - lo) * 0.04 || Math.abs(hi) * 0.01 || 1;
    lo -= pad; hi += pad;
    var vmax = Math.max.apply(null, d.v) || 1;
    function x(i) { return M.left + slot * (i + 0.5); }
    function y(p) { return M.top + (hi - p) / (hi - lo) * priceH; }
    function yv(v) { return volTop + volH - v / vmax * volH; }

    var grid = el("g", { "class": "grid" }, svg), axis = el("g", { "class": "axis" }, svg);
    var yt = niceTicks(lo, hi, 6);
    yt.ticks.forEach(function (p) {
      el("line", { x1: M.left, x2: M.left + plotW, y1: y(p), y2: y(p) }, grid);
      el("text", { x: M.left + plotW + 6, y: y(p) + 4 }, axis).textContent = fmtNum(p, yt.step);
    });
    el("text", { x: M.left + plotW + 6, y: volTop + 10 }, axis).textContent = fmtVol(vmax);
    // time labels: spaced by the measured width of a label (an intraday one, with its
    // time and zone, is three times a date's; too narrow for three of them: the short
    // form, e.g. 06-03 10:42), the first one clear of the left edge, and each kept only
    // if it clears the one before and the right edge, so no two labels overlap
    var fmt = fmtDate, labelW = measure(axis, fmt(d.t[count - 1]));
    if (plotW / (labelW + LABEL_GAP) < 3) {
      fmt = fmtShort;
      labelW = measure(axis, fmt(d.t[count - 1]));
    }
    var every = Math.max(1, Math.ceil(count / Math.max(1, Math.floor(plotW / (labelW + LABEL_GAP)))));
    var first = Math.min(count - 1, Math.max(0, Math.ceil((labelW / 2 - M.left) / slot - 0.5)));
    var clear = -Infinity;
    for (var i = first; i < count; i += every) {
      el("line", { x1: x(i), x2: x(i), y1: M.top, y2: volTop + volH }, grid);
      var tick = el("text", { x: x(i), y: HEIGHT - 6, "text-anchor": "middle" }, axis);
      tick.textContent = fmt(d.t[i]);
      var half = textWidth(tick, labelW) / 2;
      if (x(i) - half < Math.max(clear + LABEL_GAP, 0) || x(i) + half > width) {
        axis.removeChild(tick);  // it would overlap the previous label or be clipped
        continue;
      }
      clear = x(i) + half;
    }

    var candles = el("g", { "class": "candles" }, svg), vols = el("g", { "class": "volume" }, svg);
    for (var c = 0; c < count; c++) {
      var up = d.c[c] >= d.o[c], cls = up ? "up" : "down", cx = x(c);
      var g = el("g", { "class": "candle " + cls }, candles);
      el("line", { x1: cx, x2: cx, y1: y(d.h[c]), y2: y(d.l[c]) }, g);
      var top = y(Math.max(d.o[c], d.c[c])), bot = y(Math.min(d.o[c], d.c[c]));
      el("rect", { x: cx - body / 2, y: top, width: body, height: Math.max(1, bot - top) }, g);
      el("rect", { "class": "vol " + cls, x: cx - body / 2, y: yv(d.v[c]), width: body,
                   height: Math.max(0, volTop + volH - yv(d.v[c])) }, vols);
    }

    var cross = el("line", { "class": "cross", x1: 0, x2: 0, y1: M.top, y2: volTop + volH,
                             visibility: "hidden" }, svg);
    function label(i) {
      var merged = d.n[i] > 1;
      var when = merged ? fmtDate(d.t[i]) + " – " + fmtDate(d.t1[i]) : fmtDate(d.t[i]);
      var s = yt.step / 10;
      return when + "  O " + fmtNum(d.o[i], s) + "  H " + fmtNum(d.h[i], s) + "  L " +
        fmtNum(d.l[i], s) + "  C " + fmtNum(d.c[i], s) + "  V " + fmtVol(d.v[i]) +
        (merged ? "  (" + d.n[i] + " bars)" : "");
    }
    if (tip) { tip.textContent = label(count - 1); }
    svg.addEventListener("mousemove", function (ev) {
      var r = svg.getBoundingClientRect(), px = (ev.clientX - r.left) * width / r.width;
      var i = Math.min(count - 1, Math.max(0, Math.floor((px - M.left) / slot)));
      cross.setAttribute("x1", x(i)); cross.setAttribute("x2", x(i));
      cross.setAttribute("visibility", "visible");
      if (tip) { tip.textContent = label(i); }
    });
    svg.addEventListener("mouseleave", function () { cross.setAttribute("visibility", "hidden"); });

    container.dataset.points = String(count);
    container.dataset.bars = String(n);
    container.dataset.perCandle = String(d.per);
    container.dataset.rendered = "true";
  }

  function attach(container, bars, tip) {
    draw(container, bars, tip);
    var last = container.clientWidth, timer = null;
    global.addEventListener("resize", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        if (container.clientWidth !== last) { last = container.clientWidth; draw(container, bars, tip); }
      }, 150);
    });
  }

  global.TickvaultChart = { draw: attach, render: draw };
})(window);
