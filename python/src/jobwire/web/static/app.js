// jobwire web UI: live updates, confirmations and charts. No inline script anywhere (CSP).
// Untrusted values only ever reach the page through textContent, .value, dataset and
// encodeURIComponent after a fixed, server-rendered path prefix: never innerHTML.
(function () {
  "use strict";
  var POLL_MS = 2000;

  function get(obj, path) {
    if (!path) return obj;
    var parts = path.split(".");
    for (var i = 0; i < parts.length; i++) {
      if (obj === null || obj === undefined) return undefined;
      obj = Object.prototype.hasOwnProperty.call(obj, parts[i]) ? obj[parts[i]] : undefined;
    }
    return obj;
  }

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  function duration(ms) {
    if (typeof ms !== "number" || !isFinite(ms)) return "";
    var sign = ms < 0 ? "-" : "";
    ms = Math.abs(Math.trunc(ms));
    if (ms < 1000) return sign + ms + "ms";
    var s = Math.floor(ms / 1000);
    if (s < 60) return sign + s + "s";
    var m = Math.floor(s / 60); s = s % 60;
    if (m < 60) return sign + m + "m " + pad(s) + "s";
    var h = Math.floor(m / 60); m = m % 60;
    if (h < 24) return sign + h + "h " + pad(m) + "m";
    return sign + Math.floor(h / 24) + "d " + (h % 24) + "h";
  }

  function format(value, how) {
    if (value === null || value === undefined) return "";
    if (how === "duration") return duration(value);
    if (how === "int") return typeof value === "number" ? String(Math.trunc(value)) : String(value);
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function truthy(v) { return !(v === null || v === undefined || v === false || v === "" || v === 0); }

  // Apply one element's data-* bindings against `data`.
  function apply(el, data, maxHint) {
    var d = el.dataset, path;
    path = d.bind !== undefined ? d.bind : d.field;
    if (path !== undefined) el.textContent = format(get(data, path), d.format);
    if (d.fieldLink !== undefined && d.link && d.link.charAt(0) === "/") {
      var v = get(data, d.fieldLink);
      el.setAttribute("href", d.link + encodeURIComponent(v === null || v === undefined ? "" : String(v)));
    }
    if (d.fieldValue !== undefined) {
      var val = get(data, d.fieldValue);
      el.value = val === null || val === undefined ? "" : String(val);
    }
    if (d.fieldShow !== undefined) el.hidden = !truthy(get(data, d.fieldShow));
    if (d.fieldHide !== undefined) el.hidden = truthy(get(data, d.fieldHide));
    if (d.bindShowMissing !== undefined) el.hidden = truthy(get(data, d.bindShowMissing));
    path = d.fieldState !== undefined ? d.fieldState : d.bindState;
    if (path !== undefined) el.dataset.state = String(get(data, path) || "");
    if (d.fieldMeter !== undefined) {
      el.max = maxHint || 1;
      el.value = Number(get(data, d.fieldMeter)) || 0;
    }
  }

  function applyTree(root, data, skipRows, maxHint) {
    apply(root, data, maxHint);
    var all = root.querySelectorAll("*");
    for (var i = 0; i < all.length; i++) {
      if (skipRows && all[i].closest("[data-rows]")) continue;
      apply(all[i], data, maxHint);
    }
  }

  function renderRows(tbody, items) {
    var tpl = document.getElementById(tbody.dataset.template);
    if (!tpl || !tpl.content) return;
    var proto = tpl.content.querySelector("tr");
    var rows = [];
    var maxHint = 1;
    items = items || [];
    items.forEach(function (it) { if (it && typeof it.max === "number") maxHint = it.max; });
    // Same rows as last time: update them in place, so that nothing under the pointer moves.
    var keys = items.map(function (it) { return String(it.id !== undefined ? it.id : it.name); });
    var current = tbody.querySelectorAll(":scope > tr[data-row-key]");
    if (items.length && current.length === items.length && keys.every(function (k, i) {
      return current[i].getAttribute("data-row-key") === k;
    })) {
      items.forEach(function (item, i) { applyTree(current[i], item, false, maxHint); });
      return;
    }
    items.forEach(function (item, i) {
      var row = proto.cloneNode(true);
      row.setAttribute("data-row-key", keys[i]);
      applyTree(row, item, false, maxHint);
      rows.push(row);
    });
    if (!rows.length) {
      if (tbody.querySelector(":scope > tr.empty") && tbody.children.length === 1) return;
      var tr = document.createElement("tr"), td = document.createElement("td");
      tr.className = "empty";
      td.colSpan = Number(tbody.dataset.cols) || 1;
      td.textContent = tbody.dataset.empty || "";
      tr.appendChild(td);
      rows.push(tr);
    }
    tbody.replaceChildren.apply(tbody, rows);
  }

  // -- charts: a hand-written canvas bar chart, per-minute buckets --------------------------
  function drawChart(canvas, series) {
    if (!series || !canvas.getContext) return;
    var only = canvas.dataset.chartOnly;
    var kinds = only ? [only] : ["processed", "failed"];
    var colors = { processed: "#2f7d4f", failed: "#c0392b" };
    var ratio = window.devicePixelRatio || 1;
    var width = canvas.clientWidth || 600, height = canvas.clientHeight || 140;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    var ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    var n = series.minutes || (series.processed || []).length;
    var peak = 1;
    kinds.forEach(function (k) { (series[k] || []).forEach(function (v) { if (v > peak) peak = v; }); });
    var left = 40, bottom = 18, top = 8, right = 6;
    var plotW = width - left - right, plotH = height - top - bottom;
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#888";
    ctx.strokeStyle = "#e3e3e3";
    ctx.lineWidth = 1;
    [0, Math.round(peak / 2), peak].forEach(function (v) {
      var y = Math.round(top + plotH - (v / peak) * plotH) + 0.5;
      ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(left + plotW, y); ctx.stroke();
      ctx.fillText(String(v), 4, y + 4);
    });
    var slot = plotW / Math.max(n, 1);
    var barW = Math.max(1, slot / kinds.length - (slot > 4 ? 1 : 0));
    kinds.forEach(function (k, ki) {
      ctx.fillStyle = colors[k] || "#555";
      (series[k] || []).forEach(function (v, i) {
        if (!v) return;
        var h = Math.max(1, (v / peak) * plotH);
        ctx.fillRect(left + i * slot + ki * barW, top + plotH - h, barW, h);
      });
    });
    // time labels: first, middle and last minute, UTC
    ctx.fillStyle = "#888";
    [0, Math.floor(n / 2), n - 1].forEach(function (i, j) {
      var t = new Date((series.first_minute + i) * 60000);
      var label = pad(t.getUTCHours()) + ":" + pad(t.getUTCMinutes());
      var x = left + i * slot;
      if (j === 2) x = left + plotW - ctx.measureText(label).width;
      else if (j === 1) x -= ctx.measureText(label).width / 2;
      ctx.fillText(label, x, height - 4);
    });
  }

  function render(main, data) {
    applyTree(main, data, true);
    main.querySelectorAll("[data-rows]").forEach(function (tbody) {
      renderRows(tbody, get(data, tbody.dataset.rows));
    });
    main.querySelectorAll("canvas[data-chart]").forEach(function (c) {
      drawChart(c, get(data, c.dataset.chart));
    });
  }

  function banner(message) {
    var el = document.getElementById("banner");
    if (!el) return;
    if (message) { el.textContent = message; el.hidden = false; }
    else { el.hidden = true; el.textContent = ""; }
  }

  function startPolling(main) {
    var url = main.dataset.poll;
    if (!url || url.charAt(0) !== "/") return;
    var live = document.getElementById("live-status");
    var first = true;
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) {
          return r.json().catch(function () { return {}; }).then(function (body) {
            if (!r.ok) throw new Error(body.error || ("HTTP " + r.status));
            return body;
          });
        })
        .then(function (body) {
          if (main.dataset.reloadWhenOk) { window.location.reload(); return; }
          banner("");
          if (live) { live.hidden = false; live.className = "live ok"; }
          if (!main.dataset.skipRender || !first) render(main, body);
          first = false;
        })
        .catch(function (err) {
          banner(String(err && err.message || err).indexOf("Redis") >= 0 ? err.message
                 : "Cannot reach the jobwire web server or Redis: " + (err && err.message || err) + " (retrying)");
          if (live) { live.hidden = false; live.className = "live down"; }
        })
        .finally(function () { setTimeout(tick, POLL_MS); });
    }
    tick();
  }

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (form && form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) ev.preventDefault();
  });

  document.addEventListener("DOMContentLoaded", function () {
    var main = document.querySelector("main[data-poll]");
    if (main) startPolling(main);
    document.querySelectorAll("canvas[data-chart]").forEach(function (c) {
      c.textContent = "";
    });
  });
})();
