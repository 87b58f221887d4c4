/* scatterxai explorer — runs from file:// with no server and no network.
 *
 * data/index.js calls SXAI.load(header); each note's data (data/note-NNNN.js) is loaded on demand with a
 * <script> tag and calls SXAI.addNote(note).  Maps are drawn on canvases from the relevance values, so a
 * hovered cell is exactly one scattering path; its λ1 and λ2 are the path's own frequencies.
 */
(function () {
  "use strict";

  var D = null;              // the header (data/index.js)
  var NOTES = {};            // id → note detail (data/note-NNNN.js)
  var WAITING = {};          // id → callbacks waiting for that note's script
  var LUT = {};              // colour map name → [[r, g, b], …]
  var state = {view: "notes", note: null, method: null, classMethod: null, mode: "signed",
               sortKey: null, sortDir: 1, visible: []};
  var mainMap = null;

  // ---------------------------------------------------------------------------------------- helpers
  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === "text") { e.textContent = attrs[k]; }
        else if (k === "className") { e.className = attrs[k]; }
        else { e.setAttribute(k, attrs[k]); }
      });
    }
    (children || []).forEach(function (c) { e.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return e;
  }
  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } }
  function b64bytes(text) {
    var s = atob(text), out = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) { out[i] = s.charCodeAt(i); }
    return out;
  }
  function decodeF32(text) { return new Float32Array(b64bytes(text).buffer); }
  function fmtHz(v) {
    if (v === null || v === undefined || !isFinite(v)) { return "–"; }
    if (v >= 100) { return v.toFixed(0) + " Hz"; }
    if (v >= 10) { return v.toFixed(1) + " Hz"; }
    return v.toFixed(2) + " Hz";
  }
  function fmtNum(v, digits) {
    if (v === null || v === undefined || (typeof v === "number" && !isFinite(v))) { return "–"; }
    if (typeof v !== "number") { return String(v); }
    if (v === 0) { return "0"; }
    var a = Math.abs(v);
    if (a >= 1e4 || a < 1e-3) { return v.toExponential((digits || 3) - 1); }
    var t = v.toPrecision(digits || 3);
    return t.indexOf(".") >= 0 && t.indexOf("e") < 0 ? t.replace(/0+$/, "").replace(/\.$/, "") : t;
  }
  function fmtPct(v) { return (v === null || v === undefined || !isFinite(v)) ? "–" : (100 * v).toFixed(1) + " %"; }
  function className(i) { return (i === null || i === undefined) ? "–" : D.classes[i]; }
  function methodTitle(name) {
    for (var i = 0; i < D.methods.length; i++) { if (D.methods[i].name === name) { return D.methods[i].title; } }
    return name;
  }
  function lut(name) {
    if (!LUT[name]) {
      var hex = D.colormaps[name], out = [];
      for (var i = 0; i < hex.length; i += 6) {
        out.push([parseInt(hex.substr(i, 2), 16), parseInt(hex.substr(i + 2, 2), 16), parseInt(hex.substr(i + 4, 2), 16)]);
      }
      LUT[name] = out;
    }
    return LUT[name];
  }
  function colour(name, t) {
    var table = lut(name), i = Math.max(0, Math.min(table.length - 1, Math.round(t * (table.length - 1))));
    return table[i];
  }
  function rgb(c) { return "rgb(" + c[0] + "," + c[1] + "," + c[2] + ")"; }
  function luminance(c) { return (0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]) / 255; }
  /** Fractional index of v in an ascending array, on a log axis (null outside it). */
  function logIndex(values, v) {
    if (!(v > 0) || values.length === 0 || v < values[0] || v > values[values.length - 1]) { return null; }
    if (values.length === 1) { return 0; }
    for (var i = 0; i < values.length - 1; i++) {
      if (v <= values[i + 1]) {
        return i + (Math.log(v) - Math.log(values[i])) / (Math.log(values[i + 1]) - Math.log(values[i]));
      }
    }
    return values.length - 1;
  }
  function setupCanvas(canvas) {
    var w = canvas.clientWidth || 400, h = canvas.clientHeight || 300, r = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(w * r) || canvas.height !== Math.round(h * r)) {
      canvas.width = Math.round(w * r);
      canvas.height = Math.round(h * r);
    }
    var ctx = canvas.getContext("2d");
    ctx.setTransform(r, 0, 0, r, 0, 0);
    ctx.clearRect(0, 0, w, h);
    return {ctx: ctx, w: w, h: h};
  }
  /** White with thin grey diagonals: where no scattering path exists (tells itself apart from any colour of
   * the scale, in grey too). */
  function emptyPattern(ctx) {
    var tile = document.createElement("canvas");
    tile.width = tile.height = 8;
    var t = tile.getContext("2d");
    t.fillStyle = "#fff"; t.fillRect(0, 0, 8, 8);
    t.strokeStyle = "#b8b8b8"; t.lineWidth = 1;
    t.beginPath(); t.moveTo(0, 8); t.lineTo(8, 0); t.stroke();
    return ctx.createPattern(tile, "repeat");
  }
  function dashedLine(ctx, x0, y0, x1, y1) {
    ctx.save();
    ctx.setLineDash([6, 4]);
    ctx.lineWidth = 3; ctx.strokeStyle = "#000";
    ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(x1, y1); ctx.stroke();
    ctx.lineWidth = 1.5; ctx.strokeStyle = "#fff";
    ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(x1, y1); ctx.stroke();
    ctx.restore();
  }
  var TICKS_HZ = [20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000];
  var RATE_TICKS_HZ = [0.5, 1, 2, 4, 8, 16, 32, 64, 125, 250, 500, 1000, 2000, 4000, 8000];
  function tickText(v) { return v >= 1000 ? (v / 1000) + "k" : String(v); }

  // ---------------------------------------------------------------------------------------- the map
  /** A (λ1, λ2) map drawn cell by cell: rows λ1 (ascending upwards), column 0 = S1, then λ2 ascending. */
  function MapPlot(canvas, readout, opts) {
    var g = D.grid, self = this;
    this.canvas = canvas; this.readout = readout; this.opts = opts || {};
    this.nR = g.lambda1_hz.length; this.nC = g.lambda2_hz.length;
    this.pathAt = new Int32Array(this.nR * this.nC).fill(-1);
    for (var p = 0; p < g.path_row.length; p++) { this.pathAt[g.path_row[p] * this.nC + g.path_col[p]] = p; }
    this.values = null; this.mode = "signed"; this.cursor = null; this.marks = {};
    this.m = {l: 62, r: 12, t: 10, b: 42}; this.gap = this.nC > 1 ? 8 : 0;
    canvas.addEventListener("mousemove", function (ev) {
      var r = canvas.getBoundingClientRect(), cell = self.cellAt(ev.clientX - r.left, ev.clientY - r.top);
      if (cell) { self.setCursor(cell.row, cell.col); showTooltip(self.describe(cell), ev.clientX, ev.clientY); }
      else { hideTooltip(); }
    });
    canvas.addEventListener("mouseleave", hideTooltip);
    canvas.addEventListener("keydown", function (ev) {
      var moves = {ArrowUp: [1, 0], ArrowDown: [-1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1]};
      if (!moves[ev.key]) { return; }
      ev.preventDefault();
      var c = self.cursor || self.peak() || {row: 0, col: 0};
      self.setCursor(Math.max(0, Math.min(self.nR - 1, c.row + moves[ev.key][0])),
                     Math.max(0, Math.min(self.nC - 1, c.col + moves[ev.key][1])));
    });
    canvas.addEventListener("focus", function () { if (!self.cursor) { var c = self.peak(); if (c) { self.setCursor(c.row, c.col); } } });
  }
  MapPlot.prototype.layout = function (w, h) {
    var m = this.m, pw = w - m.l - m.r, ph = h - m.t - m.b;
    this.cw = (pw - this.gap) / this.nC; this.ch = ph / this.nR; this.pw = pw; this.ph = ph;
  };
  MapPlot.prototype.cellX = function (col) { return this.m.l + col * this.cw + (col > 0 ? this.gap : 0); };
  MapPlot.prototype.cellY = function (row) { return this.m.t + (this.nR - 1 - row) * this.ch; };
  MapPlot.prototype.cellCentre = function (row, col) {
    return {x: this.cellX(col) + this.cw / 2, y: this.cellY(row) + this.ch / 2};
  };
  MapPlot.prototype.cellAt = function (x, y) {
    var m = this.m;
    if (this.cw === undefined || y < m.t || y >= m.t + this.ph || x < m.l) { return null; }
    var row = this.nR - 1 - Math.floor((y - m.t) / this.ch), col;
    if (x < m.l + this.cw) { col = 0; }
    else if (x >= m.l + this.cw + this.gap) { col = 1 + Math.floor((x - m.l - this.cw - this.gap) / this.cw); }
    else { return null; }
    if (col >= this.nC || row < 0 || row >= this.nR) { return null; }
    return {row: row, col: col, path: this.pathAt[row * this.nC + col]};
  };
  /** The value drawn for path p (NaN: no value) and the scale's maximum. */
  MapPlot.prototype.shown = function (p) {
    var v = this.values[p];
    if (this.mode === "positive") { return Math.max(v, 0); }
    return this.mode === "count" ? v : Math.abs(v);
  };
  MapPlot.prototype.scaleMax = function () {
    var mx = 0;
    for (var p = 0; p < this.values.length; p++) { var s = this.shown(p); if (isFinite(s) && s > mx) { mx = s; } }
    return mx;
  };
  MapPlot.prototype.peak = function () {
    if (!this.values) { return null; }
    var best = -1, bv = -Infinity;
    for (var p = 0; p < this.values.length; p++) { var s = this.shown(p); if (isFinite(s) && s > bv) { bv = s; best = p; } }
    return best < 0 ? null : {row: D.grid.path_row[best], col: D.grid.path_col[best]};
  };
  MapPlot.prototype.set = function (values, mode, marks) {
    this.values = values; this.mode = mode; this.marks = marks || {};
    this.draw();
    if (this.cursor) { this.setCursor(this.cursor.row, this.cursor.col); }
  };
  MapPlot.prototype.draw = function () {
    var s = setupCanvas(this.canvas), ctx = s.ctx, g = D.grid, m = this.m;
    this.layout(s.w, s.h);
    ctx.fillStyle = emptyPattern(ctx);   // cells without a path: a texture, not a value of the colour scale
    ctx.fillRect(m.l, m.t, this.cw, this.ph);
    if (this.nC > 1) { ctx.fillRect(this.cellX(1), m.t, this.pw - this.cw - this.gap, this.ph); }
    if (this.values) { this.drawCells(ctx); }
    this.drawMarks(ctx);
    this.drawAxes(ctx, s);
    if (this.cursor) { this.drawCursor(ctx); }
  };
  MapPlot.prototype.drawCells = function (ctx) {
    var g = D.grid, mx = this.scaleMax(), cmap = this.opts.cmap || "viridis";
    for (var p = 0; p < this.values.length; p++) {
      var v = this.values[p];
      if (!isFinite(v)) { continue; }
      var c = colour(cmap, mx > 0 ? this.shown(p) / mx : 0);
      var x0 = Math.round(this.cellX(g.path_col[p])), x1 = Math.round(this.cellX(g.path_col[p]) + this.cw);
      var y0 = Math.round(this.cellY(g.path_row[p])), y1 = Math.round(this.cellY(g.path_row[p]) + this.ch);
      ctx.fillStyle = rgb(c);
      ctx.fillRect(x0, y0, Math.max(1, x1 - x0), Math.max(1, y1 - y0));
      if (this.mode === "signed" && v < 0 && x1 - x0 >= 3) {   // sign shown by a hatch, not by hue
        ctx.strokeStyle = luminance(c) > 0.5 ? "#000" : "#fff";
        ctx.lineWidth = 1;
        ctx.beginPath(); ctx.moveTo(x0 + 0.5, y0 + 0.5); ctx.lineTo(x1 - 0.5, y1 - 0.5); ctx.stroke();
      }
    }
  };
  MapPlot.prototype.drawMarks = function (ctx) {
    var g = D.grid, m = this.m, mk = this.marks;
    ctx.font = "11px sans-serif";
    var r = logIndex(g.lambda1_hz, mk.f0_hz);
    if (r !== null) {
      var y = this.cellY(r) + this.ch / 2;
      dashedLine(ctx, m.l, y, m.l + this.pw, y);
    }
    var lam2 = g.lambda2_hz.slice(1), c = logIndex(lam2, mk.rate_hz);
    if (c !== null && this.nC > 1) {
      var x = this.cellX(1) + c * this.cw + this.cw / 2;
      dashedLine(ctx, x, m.t, x, m.t + this.ph);
    }
  };
  MapPlot.prototype.drawAxes = function (ctx, s) {
    var g = D.grid, m = this.m, self = this;
    ctx.fillStyle = "#222"; ctx.strokeStyle = "#222"; ctx.font = "11px sans-serif";
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    var lastY = Infinity;
    TICKS_HZ.forEach(function (v) {
      var r = logIndex(g.lambda1_hz, v);
      if (r === null) { return; }
      var y = self.cellY(r) + self.ch / 2;
      if (lastY - y < 13) { return; }
      lastY = y;
      ctx.fillText(tickText(v), m.l - 5, y);
      ctx.beginPath(); ctx.moveTo(m.l - 3, y); ctx.lineTo(m.l, y); ctx.stroke();
    });
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    ctx.fillText("S1", this.cellX(0) + this.cw / 2, m.t + this.ph + 4);
    var lam2 = g.lambda2_hz.slice(1), last = -Infinity;
    RATE_TICKS_HZ.forEach(function (v) {
      var c = logIndex(lam2, v);
      if (c === null) { return; }
      var x = self.cellX(1) + c * self.cw + self.cw / 2;
      if (x - last < 26) { return; }
      last = x;
      ctx.fillText(tickText(v), x, m.t + self.ph + 4);
      ctx.beginPath(); ctx.moveTo(x, m.t + self.ph); ctx.lineTo(x, m.t + self.ph + 3); ctx.stroke();
    });
    ctx.fillText("λ2, modulation rate (Hz)", m.l + this.pw / 2, m.t + this.ph + 22);
    ctx.save();
    ctx.translate(12, m.t + this.ph / 2); ctx.rotate(-Math.PI / 2);
    ctx.fillText("λ1, carrier frequency (Hz)", 0, -6);
    ctx.restore();
  };
  MapPlot.prototype.drawCursor = function (ctx) {
    var c = this.cursor, x = this.cellX(c.col), y = this.cellY(c.row);
    ctx.lineWidth = 2; ctx.strokeStyle = "#000"; ctx.strokeRect(x - 1, y - 1, this.cw + 2, this.ch + 2);
    ctx.lineWidth = 1; ctx.strokeStyle = "#fff"; ctx.strokeRect(x - 2.5, y - 2.5, this.cw + 5, this.ch + 5);
  };
  /** Text of a cell: the path's own λ1 and λ2 in Hz and its value. */
  MapPlot.prototype.describe = function (cell) {
    var g = D.grid;
    if (cell.path < 0) { return "no scattering path here (λ1 row " + fmtHz(g.lambda1_hz[cell.row]) + ")"; }
    var p = cell.path, l1 = g.path_lambda1_hz[p], l2 = g.path_lambda2_hz[p];
    var where = "λ1 = " + fmtHz(l1) + ", " + (l2 === null ? "S1 (first order, no λ2)" : "λ2 = " + fmtHz(l2));
    var v = this.values ? this.values[p] : NaN;
    if (this.opts.describeValue) { return where + ": " + this.opts.describeValue(v, p); }
    return where + ": relevance " + (isFinite(v) ? fmtNum(v) : "not explained");
  };
  MapPlot.prototype.setCursor = function (row, col) {
    var path = this.pathAt[row * this.nC + col];
    this.cursor = {row: row, col: col};
    this.draw();
    if (!this.readout) { return; }
    var ro = this.readout, g = D.grid;
    ro.textContent = this.describe({row: row, col: col, path: path});
    ro.dataset.path = path; ro.dataset.row = row; ro.dataset.col = col;
    ro.dataset.lambda1Hz = path >= 0 ? g.path_lambda1_hz[path] : "";
    ro.dataset.lambda2Hz = path >= 0 && g.path_lambda2_hz[path] !== null ? g.path_lambda2_hz[path] : "";
    ro.dataset.value = path >= 0 && this.values ? this.values[path] : "";
  };
  /** The strongest cells (by the shown quantity), for text alternatives. */
  MapPlot.prototype.topCells = function (n) {
    var idx = [], self = this;
    for (var p = 0; p < this.values.length; p++) { if (isFinite(this.values[p])) { idx.push(p); } }
    idx.sort(function (a, b) { return self.shown(b) - self.shown(a); });
    return idx.slice(0, n);
  };

  function showTooltip(text, x, y) {
    var t = $("tooltip");
    t.textContent = text; t.hidden = false;
    t.style.left = Math.min(x + 14, window.innerWidth - t.offsetWidth - 4) + "px";
    t.style.top = (y + 16) + "px";
  }
  function hideTooltip() { $("tooltip").hidden = true; }

  function drawColorbar(canvas, cmap, max, label) {
    var s = setupCanvas(canvas), ctx = s.ctx, l = 62, w = s.w - l - 12;
    for (var i = 0; i < w; i++) { ctx.fillStyle = rgb(colour(cmap, i / (w - 1))); ctx.fillRect(l + i, 2, 1.5, 14); }
    ctx.fillStyle = "#222"; ctx.font = "11px sans-serif"; ctx.textBaseline = "top";
    ctx.textAlign = "left"; ctx.fillText("0", l, 19);
    ctx.textAlign = "right"; ctx.fillText(fmtNum(max), l + w, 19);
    ctx.textAlign = "center"; ctx.fillText(label, l + w / 2, 19);
  }

  // ---------------------------------------------------------------------------------------- notes table
  var COLUMNS = [
    {key: "file", label: "file"},
    {key: "label", label: "class", text: function (n) { return className(n.label); }},
    {key: "pred", label: "prediction", text: function (n) { return className(n.pred); }},
    {key: "confidence", label: "confidence", num: true, text: function (n) { return fmtPct(n.confidence); }},
    {key: "pitch", label: "pitch", sortBy: function (n) { return n.f0_hz !== undefined && n.f0_hz !== null ? n.f0_hz : n.pitch; },
     text: function (n) { return (n.pitch || "") + (n.f0_hz ? " (" + fmtHz(n.f0_hz) + ")" : ""); }},
    {key: "rate_hz", label: "modulation rate", num: true, text: function (n) { return fmtHz(n.rate_hz); }},
    {key: "correct", label: "correct?", text: function (n) { return n.correct === null ? "–" : (n.correct ? "yes" : "no"); }},
    {key: "instrument", label: "instrument"}
  ];
  function columns() {
    return COLUMNS.filter(function (c) {
      return D.notes.some(function (n) { return n[c.key] !== undefined && n[c.key] !== null; });
    });
  }
  function sortValue(c, n) { var v = c.sortBy ? c.sortBy(n) : n[c.key]; return v === undefined ? null : v; }

  function buildTable() {
    var tr = document.querySelector("#notes-table thead tr");
    clear(tr);
    columns().forEach(function (c) {
      var b = el("button", {type: "button", text: c.label, "data-key": c.key});
      b.addEventListener("click", function () {
        state.sortDir = state.sortKey === c.key ? -state.sortDir : 1;
        state.sortKey = c.key;
        renderTable();
      });
      tr.appendChild(el("th", {scope: "col", className: c.num ? "num" : "", "data-key": c.key}, [b]));
    });
    ["filter-text", "filter-class", "filter-pred", "filter-wrong"].forEach(function (id) {
      $(id).addEventListener(id === "filter-text" ? "input" : "change", renderTable);
    });
  }
  function filtered() {
    var text = $("filter-text").value.trim().toLowerCase(), cls = $("filter-class").value,
        pred = $("filter-pred").value, wrong = $("filter-wrong").checked;
    var rows = D.notes.filter(function (n) {
      if (cls !== "" && String(n.label) !== cls) { return false; }
      if (pred !== "" && String(n.pred) !== pred) { return false; }
      if (wrong && n.correct !== false) { return false; }
      if (text) {
        var hay = [n.file, n.pitch, n.instrument, className(n.label), className(n.pred)].join(" ").toLowerCase();
        if (hay.indexOf(text) < 0) { return false; }
      }
      return true;
    });
    if (state.sortKey) {
      var c = COLUMNS.filter(function (x) { return x.key === state.sortKey; })[0];
      rows.sort(function (a, b) {
        var va = sortValue(c, a), vb = sortValue(c, b);
        if (va === vb) { return a.id - b.id; }
        if (va === null) { return 1; }
        if (vb === null) { return -1; }
        return (va < vb ? -1 : 1) * state.sortDir;
      });
    }
    return rows;
  }
  function renderTable() {
    var rows = filtered(), tbody = document.querySelector("#notes-table tbody"), cols = columns();
    state.visible = rows.map(function (n) { return n.id; });
    clear(tbody);
    document.querySelectorAll("#notes-table th").forEach(function (th) {
      if (th.dataset.key === state.sortKey) { th.setAttribute("aria-sort", state.sortDir > 0 ? "ascending" : "descending"); }
      else { th.removeAttribute("aria-sort"); }
    });
    rows.forEach(function (n, i) {
      var tr = el("tr", {tabindex: i === 0 ? "0" : "-1", "data-id": n.id});
      cols.forEach(function (c) {
        var td = el("td", {className: c.num ? "num" : "", text: c.text ? c.text(n) : (n[c.key] === null ? "–" : String(n[c.key]))});
        if (c.key === "correct" && n.correct !== null) { td.className = n.correct ? "right" : "wrong"; }
        tr.appendChild(td);
      });
      tr.addEventListener("click", function () { openNote(n.id); });
      tr.addEventListener("keydown", tableKey);
      tbody.appendChild(tr);
    });
    $("filter-count").textContent = rows.length + " of " + D.notes.length + " notes shown";
  }
  function tableKey(ev) {
    var tr = ev.currentTarget, target = null;
    if (ev.key === "ArrowDown") { target = tr.nextElementSibling; }
    else if (ev.key === "ArrowUp") { target = tr.previousElementSibling; }
    else if (ev.key === "Home") { target = tr.parentNode.firstElementChild; }
    else if (ev.key === "End") { target = tr.parentNode.lastElementChild; }
    else if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); openNote(Number(tr.dataset.id)); return; }
    else { return; }
    ev.preventDefault();
    if (target) { tr.tabIndex = -1; target.tabIndex = 0; target.focus(); }
  }

  // ---------------------------------------------------------------------------------------- note view
  function openNote(id) { location.hash = "#note/" + id; }
  // the note the address names: a key pressed right after another one's hash change must start from the
  // new note, and the hashchange event that updates state.note arrives later (asynchronously)
  function currentNote() {
    var parts = hashParts();
    var id = parts[0] === "note" && parts[1] !== undefined ? Number(parts[1]) : NaN;
    return D.notes[id] ? id : state.note;
  }
  function neighbour(step) {
    var cur = currentNote();
    var order = state.visible.indexOf(cur) >= 0 ? state.visible : D.notes.map(function (n) { return n.id; });
    var i = order.indexOf(cur);
    if (i < 0 || order.length === 0) { return null; }
    return order[(i + step + order.length) % order.length];
  }
  function loadNote(id, done) {
    if (NOTES[id]) { done(NOTES[id]); return; }
    if (WAITING[id]) { WAITING[id].push(done); return; }
    WAITING[id] = [done];
    var name = "data/note-" + ("000" + id).slice(-4) + ".js";
    var s = el("script", {src: name});
    s.onerror = function () {
      delete WAITING[id];
      showStatus("The data of this note (" + name + ") could not be read; is the explorer folder complete?");
    };
    document.body.appendChild(s);
  }
  function showStatus(text) { var s = $("note-status"); s.textContent = text || ""; s.hidden = !text; }

  function renderNote(id) {
    var n = D.notes[id];
    if (!n) { location.hash = "#notes"; return; }
    state.note = id;
    $("note-title").textContent = n.file;
    document.title = n.file + " — scatterxai explorer";
    var facts = $("note-facts");
    clear(facts);
    [["class", className(n.label)], ["prediction", className(n.pred) + " (" + fmtPct(n.confidence) + ")"],
     ["explained class", className(n.explained)], ["correct?", n.correct === null ? null : (n.correct ? "yes" : "no")],
     ["pitch", n.pitch ? n.pitch + (n.f0_hz ? " (f0 " + fmtHz(n.f0_hz) + ")" : "") : (n.f0_hz ? fmtHz(n.f0_hz) : null)],
     ["modulation rate", n.rate_hz ? fmtHz(n.rate_hz) : null], ["instrument", n.instrument || null],
     ["why shown", D.reasons[n.reason] || n.reason], ["row in relevance.h5", String(n.row)]
    ].forEach(function (f) {
      if (f[1] !== null && f[1] !== undefined) { facts.appendChild(el("div", {}, [el("dt", {text: f[0]}), el("dd", {text: f[1]})])); }
    });
    showStatus("");
    loadNote(id, function (d) { if (state.note === id && state.view === "note") { drawNote(n, d); } });
  }
  function drawNote(n, d) {
    drawMap(n, d);
    drawSpectrogram(n, d);
    drawProbs(n, d);
    drawPlayers(n, d);
    if (d.audio_error) { showStatus("Audio: " + d.audio_error); }
  }
  function drawMap(n, d) {
    var m = state.method, text = d.maps[m];
    $("map-caption").textContent = methodTitle(m) + ": relevance of " + className(n.explained) +
      " on the (λ1, λ2) plane (kurtosis " + fmtNum(d.kurtosis[m]) + ")";
    if (!text) {
      mainMap.set(new Float32Array(D.grid.path_row.length).fill(NaN), state.mode, {});
      $("map-alt").textContent = methodTitle(m) + " did not explain this note (the slow methods explain a " +
        "class-stratified subset of the notes).";
      drawColorbar($("map-colorbar"), "viridis", 0, "");
      return;
    }
    var values = decodeF32(text);
    mainMap.set(values, state.mode, {f0_hz: n.f0_hz, rate_hz: n.rate_hz});
    var mx = mainMap.scaleMax();
    drawColorbar($("map-colorbar"), "viridis", mx, state.mode === "positive" ? "positive relevance" : "abs(relevance)");
    var legend = [state.mode === "signed" ? "Colour: abs(R) (viridis: lightness grows with the value, readable in grey); " +
      "hatched cells have negative relevance." : "Colour: max(R, 0); negative cells are drawn as 0."];
    if (n.f0_hz) {
      legend.push("Dashed horizontal line: f0 = " + fmtHz(n.f0_hz) + (logIndex(D.grid.lambda1_hz, n.f0_hz) === null ?
        " (outside the λ1 rows, not drawn)." : "."));
    }
    if (n.rate_hz) {
      legend.push("Dashed vertical line: true modulation rate " + fmtHz(n.rate_hz) +
        (logIndex(D.grid.lambda2_hz.slice(1), n.rate_hz) === null ? " (outside the λ2 columns, not drawn)." : "."));
    }
    legend.push("White with grey diagonals: no scattering path (S2 exists only for λ2 below the bandwidth of the λ1 filter).");
    $("map-legend").textContent = legend.join(" ");
    $("map-alt").textContent = mapAlt(n, m, values);
  }
  function mapAlt(n, m, values) {
    var g = D.grid, s1 = 0, tot = 0;
    for (var p = 0; p < values.length; p++) { var a = Math.abs(values[p]); tot += a; if (g.order[p] === 1) { s1 += a; } }
    var top = mainMap.topCells(3).map(function (p, i) {
      var l2 = g.path_lambda2_hz[p];
      return "(" + (i + 1) + ") λ1 " + fmtHz(g.path_lambda1_hz[p]) + ", " + (l2 === null ? "S1" : "λ2 " + fmtHz(l2)) +
        ", R " + fmtNum(values[p]);
    });
    return "Text description: " + methodTitle(m) + " map of " + n.file + " over " + values.length + " paths. " +
      "Strongest cells: " + top.join("; ") + ". The S1 column holds " + fmtPct(tot > 0 ? s1 / tot : NaN) +
      " of abs(R)." + (n.f0_hz ? " f0 " + fmtHz(n.f0_hz) + "." : "") + (n.rate_hz ? " True rate " + fmtHz(n.rate_hz) + "." : "");
  }
  function drawSpectrogram(n, d) {
    var canvas = $("spec"), s = setupCanvas(canvas), ctx = s.ctx, sp = d.spectrogram;
    if (!sp) { $("spec-alt").textContent = "No spectrogram: the note's audio is not available."; return; }
    var img = b64bytes(sp.image), nr = sp.n_rows, nf = sp.n_frames, table = lut("magma");
    var off = document.createElement("canvas"); off.width = nf; off.height = nr;
    var octx = off.getContext("2d"), data = octx.createImageData(nf, nr);
    for (var r = 0; r < nr; r++) {
      for (var f = 0; f < nf; f++) {
        var c = table[img[r * nf + f]], o = ((nr - 1 - r) * nf + f) * 4;
        data.data[o] = c[0]; data.data[o + 1] = c[1]; data.data[o + 2] = c[2]; data.data[o + 3] = 255;
      }
    }
    octx.putImageData(data, 0, 0);
    var m = {l: 52, r: 10, t: 8, b: 34}, pw = s.w - m.l - m.r, ph = s.h - m.t - m.b;
    // each column is one frame, centred on its time: the image spans from half a hop before the first frame
    // to half a hop after the last one
    var hop = nf > 1 ? sp.times_s[1] - sp.times_s[0] : sp.duration_s, t0 = sp.times_s[0] - hop / 2;
    ctx.fillStyle = "#fff"; ctx.fillRect(m.l, m.t, pw, ph);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(off, m.l + t0 / sp.duration_s * pw, m.t, nf * hop / sp.duration_s * pw, ph);
    var rpo = D.spectrogram.rows_per_octave, fmin = D.spectrogram.fmin_hz;
    function yOf(hz) { return m.t + ph - (rpo * Math.log2(hz / fmin) + 0.5) / nr * ph; }
    ctx.fillStyle = "#222"; ctx.strokeStyle = "#222"; ctx.font = "11px sans-serif";
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    TICKS_HZ.forEach(function (v) {
      var y = yOf(v);
      if (y < m.t || y > m.t + ph) { return; }
      ctx.fillText(tickText(v), m.l - 5, y);
    });
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    for (var t = 0; t <= sp.duration_s; t += 1) { ctx.fillText(String(t), m.l + t / sp.duration_s * pw, m.t + ph + 3); }
    ctx.fillText("time (s)", m.l + pw / 2, m.t + ph + 17);
    ctx.save(); ctx.translate(11, m.t + ph / 2); ctx.rotate(-Math.PI / 2); ctx.fillText("frequency (Hz)", 0, -6); ctx.restore();
    if (n.f0_hz) { var y0 = yOf(n.f0_hz); if (y0 >= m.t && y0 <= m.t + ph) { dashedLine(ctx, m.l, y0, m.l + pw, y0); } }
    $("spec-alt").textContent = "Log-frequency spectrogram (" + fmtHz(fmin) + " to " + fmtHz(sp.freqs_hz[nr - 1]) +
      ", " + sp.duration_s.toFixed(1) + " s, " + sp.range_db + " dB range, magma colours: brighter is louder)" +
      (n.f0_hz ? "; the dashed line marks f0 = " + fmtHz(n.f0_hz) : "") + ".";
  }
  function drawProbs(n, d) {
    var tbody = document.querySelector("#probs tbody");
    clear(tbody);
    d.probs.forEach(function (p, c) {
      var tags = [];
      if (c === n.pred) { tags.push("predicted"); }
      if (c === n.label) { tags.push("true"); }
      var bar = el("span", {style: "width:" + (100 * p).toFixed(1) + "%"});
      var tr = el("tr", {className: c === n.pred ? "pred" : ""}, [
        el("td", {text: D.classes[c] + (tags.length ? " (" + tags.join(", ") + ")" : "")}),
        el("td", {className: "num", text: fmtPct(p)}), el("td", {className: "bar", "aria-hidden": "true"}, [bar])]);
      tbody.appendChild(tr);
    });
  }
  function player(label, file, id) {
    var a = el("audio", {controls: "", preload: "metadata", src: "audio/" + file, id: id});
    return el("div", {className: "player"}, [el("label", {"for": id, text: label}), a]);
  }
  function drawPlayers(n, d) {
    var box = $("players"), m = state.method, title = methodTitle(m);
    clear(box);
    if (!d.audio) { box.appendChild(el("p", {text: d.audio_error || "No audio in this explorer."})); return; }
    box.appendChild(player("The note (the " + D.scattering.window_s.toFixed(1) + "-s window the model saw)",
                           d.audio.note, "audio-note"));
    var a = d.audio.methods[m];
    if (!a) {
      var meta = D.methods.filter(function (x) { return x.name === m; })[0];
      box.appendChild(el("p", {className: "legend", text: title + (meta && !meta.auralised ?
        " was not auralised in this explorer (scatterxai explore RUN_DIR --auralise all resynthesises every method)." :
        " has no map for this note, so nothing to resynthesise.")}));
      return;
    }
    box.appendChild(player("What " + title + " keeps (relevant part: " + fmtPct(a.energy_share) + " of the energy)",
                           a.relevant, "audio-relevant"));
    box.appendChild(player("What " + title + " leaves (complement)", a.complement, "audio-complement"));
  }

  // ---------------------------------------------------------------------------------------- classes view
  function renderClasses() {
    var cv = D.classes_view, m = state.classMethod, box = $("class-maps");
    $("classes-intro").textContent = "Aggregated maps (paper eq. 13): for each class (grouped by " +
      (cv.grouped_by === "label" ? "true class" : "prediction") + "), how many of its notes have each path among " +
      "the top " + cv.top_n + " of their local map, over every note the method explained (" + D.n_total +
      " notes of the " + (D.subset || "explained") + " split, not only those in the notes table). Hover a cell for its count.";
    clear(box);
    D.classes.forEach(function (name, c) {
      var counts = cv.aggregate[m][c], n = cv.kurtosis[m].n[c];
      var canvas = el("canvas", {tabindex: "0", role: "img", "aria-label": "aggregated map of " + name});
      var readout = el("p", {className: "readout", "aria-live": "polite"});
      var alt = el("p", {className: "alt"});
      var fig = el("figure", {className: "panel"}, [
        el("figcaption", {text: name + " (" + n + " notes; kurtosis " + fmtNum(cv.kurtosis[m].mean[c]) + " ± " +
          fmtNum(cv.kurtosis[m].std[c]) + ")"}), canvas, readout, alt]);
      box.appendChild(fig);
      var plot = new MapPlot(canvas, readout, {describeValue: function (v) {
        return fmtNum(v) + " of " + n + " notes have this path in their top " + cv.top_n; }});
      plot.set(Float32Array.from(counts), "count", {});
      var top = plot.topCells(3).filter(function (p) { return counts[p] > 0; }).map(function (p) {
        var l2 = D.grid.path_lambda2_hz[p];
        return "λ1 " + fmtHz(D.grid.path_lambda1_hz[p]) + ", " + (l2 === null ? "S1" : "λ2 " + fmtHz(l2)) + ": " + counts[p];
      });
      alt.textContent = "Most frequent top-" + cv.top_n + " paths: " + (top.length ? top.join("; ") : "none") + ".";
    });
    renderKurtosis();
  }
  function renderKurtosis() {
    var cv = D.classes_view, thead = document.querySelector("#kurtosis-table thead"),
        tbody = document.querySelector("#kurtosis-table tbody");
    clear(thead); clear(tbody);
    thead.appendChild(el("tr", {}, [el("th", {scope: "col", text: "method"}), el("th", {scope: "col", className: "num", text: "all"})]
      .concat(D.classes.map(function (c) { return el("th", {scope: "col", className: "num", text: c}); }))));
    D.methods.forEach(function (meta) {
      var k = cv.kurtosis[meta.name];
      var cells = [el("th", {scope: "row", text: meta.title}), el("td", {className: "num", text: fmtNum(k.all) + " ± " + fmtNum(k.all_std)})];
      D.classes.forEach(function (_, c) {
        cells.push(el("td", {className: "num", text: fmtNum(k.mean[c]) + " ± " + fmtNum(k.std[c]) + " (" + k.n[c] + ")"}));
      });
      tbody.appendChild(el("tr", {}, cells));
    });
  }

  // ---------------------------------------------------------------------------------------- methods view
  function simpleTable(columns, rows, caption) {
    var t = el("table", {});
    if (caption) { t.appendChild(el("caption", {text: caption})); }
    t.appendChild(el("thead", {}, [el("tr", {}, columns.map(function (c) { return el("th", {scope: "col", text: c}); }))]));
    t.appendChild(el("tbody", {}, rows.map(function (r) {
      return el("tr", {}, r.map(function (v, i) {
        return i === 0 ? el("th", {scope: "row", text: String(v)}) : (v instanceof Node ? el("td", {}, [v]) :
          el("td", {className: typeof v === "number" ? "num" : "", text: typeof v === "number" ? fmtNum(v) : String(v)}));
      }));
    })));
    return el("div", {className: "scroll"}, [t]);
  }
  function renderMethods() {
    var mv = D.methods_view, box = $("methods-compare");
    clear(box);
    box.appendChild(el("h3", {text: "Comparison of the methods (compare/)"}));
    if (!mv.compare) {
      box.appendChild(el("p", {text: "This run has no comparison (compare/compare.json): scatterxai compare RELEVANCE.h5 --out RUN_DIR/compare makes it."}));
    } else {
      if (mv.compare.table) { box.appendChild(simpleTable(mv.compare.table.columns, mv.compare.table.rows)); }
      mv.compare.text.forEach(function (p) { box.appendChild(el("p", {className: "legend", text: p})); });
      Object.keys(mv.compare.between).forEach(function (metric) {
        var b = mv.compare.between[metric];
        var rows = b.methods.map(function (a, i) { return [methodTitle(a)].concat(b.matrix[i].map(function (v) { return v === null ? "–" : v; })); });
        var det = el("details", {});
        if (metric === "js") { det.open = true; }
        det.appendChild(el("summary", {text: "Between methods, " + metric + " (mean over the sampled notes)"}));
        det.appendChild(simpleTable(["method"].concat(b.methods.map(methodTitle)), rows));
        box.appendChild(det);
      });
    }
    renderQuality();
  }
  function renderQuality() {
    var q = D.methods_view.quality, box = $("methods-quality");
    clear(box);
    box.appendChild(el("h3", {text: "Is the explanation right? Quality verdicts (quality/)"}));
    if (!q) { box.appendChild(el("p", {text: "This run has no quality checks (quality/quality.json)."})); return; }
    var rows = q.methods.map(function (m, i) {
      return [methodTitle(m)].concat(q.verdicts[i].map(function (v) {
        return el("span", {className: v === null ? "" : (v ? "pass" : "fail"), text: v === null ? "not measured" : (v ? "pass" : "FAIL")});
      }));
    });
    box.appendChild(simpleTable(["method"].concat(q.checks.map(function (c) { return c.replace(/_/g, " "); })), rows,
      "Verdict of each check (quality.json): pass, FAIL, or not measured on this run."));
    if (q.table) {
      box.appendChild(el("h3", {text: "Ranking (quality.md)"}));
      box.appendChild(simpleTable(q.table.columns, q.table.rows));
    }
    q.text.forEach(function (p) { box.appendChild(el("p", {className: "legend", text: p})); });
    var det = el("details", {});
    det.appendChild(el("summary", {text: "Every score of quality.json (" + q.scores.length +
      " values per method, the controls included when the run has them)"}));
    det.appendChild(simpleTable(["score"].concat(q.methods.map(methodTitle)), q.scores.map(function (r) {
      return r.map(function (v, i) { return i === 0 ? v : (v === null ? "–" : (typeof v === "boolean" ? String(v) : v)); });
    })));
    box.appendChild(det);
  }

  // ---------------------------------------------------------------------------------------- routing
  // the address after "#", split at "/": ["note", "3"], ["classes"]...
  function hashParts() { return location.hash.replace(/^#/, "").split("/"); }
  function route() {
    var parts = hashParts(), view = parts[0] || "notes";
    if (["notes", "note", "classes", "methods"].indexOf(view) < 0) { view = "notes"; }
    if (view === "note" && parts[1] !== undefined) { state.note = Number(parts[1]); }
    if (view === "note" && (state.note === null || !D.notes[state.note])) { state.note = D.notes.length ? 0 : null; }
    if (view === "note" && state.note === null) { view = "notes"; }
    state.view = view;
    ["notes", "note", "classes", "methods"].forEach(function (v) {
      $("view-" + v).hidden = v !== view;
      var tab = $("tab-" + v);
      if (v === view) { tab.setAttribute("aria-current", "page"); } else { tab.removeAttribute("aria-current"); }
    });
    hideTooltip();
    if (view === "note") { $("tab-note").href = "#note/" + state.note; renderNote(state.note); }
    else { document.title = "scatterxai explorer — " + D.title; }
    if (view === "classes") { renderClasses(); }
    if (view === "methods") { renderMethods(); }
  }
  function globalKey(ev) {
    if (state.view !== "note" || ev.altKey || ev.ctrlKey || ev.metaKey) { return; }
    var tag = (ev.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "select" || tag === "textarea") { return; }
    if (ev.key === "n" || ev.key === "p") {
      var next = neighbour(ev.key === "n" ? 1 : -1);
      if (next !== null) { ev.preventDefault(); openNote(next); }
    }
  }

  function init() {
    $("title").textContent = "scatterxai explorer: " + D.title;
    $("subtitle").textContent = D.notes.length + " notes of " + D.n_total + " explained (" + (D.subset || "") +
      " split); maps explain " + D.explained + "; " + D.methods.length + " attribution methods.";
    $("selection").textContent = "Shown: " + D.selection;
    $("footer").textContent = "Written by scatterxai " + D.version + " from " + D.run_dir +
      ". Everything runs in this browser from local files.";
    D.classes.forEach(function (c, i) {
      $("filter-class").appendChild(el("option", {value: String(i), text: c}));
      $("filter-pred").appendChild(el("option", {value: String(i), text: c}));
    });
    [$("method"), $("class-method")].forEach(function (sel) {
      D.methods.forEach(function (m) {
        sel.appendChild(el("option", {value: m.name, text: m.title + (m.auralised ? "" : " (no audio)")}));
      });
    });
    state.method = state.classMethod = D.default_method;
    $("method").value = $("class-method").value = D.default_method;
    $("method").addEventListener("change", function () {
      state.method = $("method").value;
      if (state.note !== null && NOTES[state.note]) { drawMap(D.notes[state.note], NOTES[state.note]); drawPlayers(D.notes[state.note], NOTES[state.note]); }
    });
    $("class-method").addEventListener("change", function () { state.classMethod = $("class-method").value; renderClasses(); });
    document.querySelectorAll("input[name=mode]").forEach(function (r) {
      r.addEventListener("change", function () {
        state.mode = r.value;
        if (state.note !== null && NOTES[state.note]) { drawMap(D.notes[state.note], NOTES[state.note]); }
      });
    });
    $("prev-note").addEventListener("click", function () { var p = neighbour(-1); if (p !== null) { openNote(p); } });
    $("next-note").addEventListener("click", function () { var p = neighbour(1); if (p !== null) { openNote(p); } });
    document.addEventListener("keydown", globalKey);
    mainMap = new MapPlot($("map"), $("map-readout"));
    buildTable();
    renderTable();
    window.addEventListener("hashchange", route);
    route();
  }

  window.SXAI = {
    load: function (header) { D = header; init(); },
    addNote: function (note) {
      NOTES[note.id] = note;
      (WAITING[note.id] || []).forEach(function (f) { f(note); });
      delete WAITING[note.id];
    },
    /** For tests and scripts: the main map's geometry and the current state. */
    debug: function () {
      return {state: state, cellCentre: function (row, col) { return mainMap.cellCentre(row, col); },
              pathCell: function (p) { return {row: D.grid.path_row[p], col: D.grid.path_col[p]}; },
              loaded: Object.keys(NOTES).map(Number)};
    }
  };
}());
