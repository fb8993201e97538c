// duroworker dashboard: live charts. Served from the binary (embed.FS); no
// dependencies. Every value read from the API is put into the page with
// textContent or as an SVG attribute, never as HTML.
"use strict";
(function () {
  var SVG = "http://www.w3.org/2000/svg";
  var W = 300, H = 70;

  function el(name, attrs) {
    var e = document.createElementNS(SVG, name);
    for (var k in attrs) { e.setAttribute(k, attrs[k]); }
    return e;
  }

  function fmt(v) {
    if (v >= 100 || v === 0) { return String(Math.round(v)); }
    if (v >= 10) { return v.toFixed(1); }
    return v.toFixed(2);
  }

  // draw renders one series as a polyline over an area, scaled to its max.
  function draw(fig, points) {
    var key = fig.getAttribute("data-series");
    var vals = points.map(function (p) { return Number(p[key]) || 0; });
    var cap = fig.querySelector("figcaption");
    if (!cap) {
      cap = document.createElement("figcaption");
      var t = document.createElement("span");
      t.textContent = fig.getAttribute("data-title");
      var v = document.createElement("b");
      v.className = "value";
      cap.appendChild(t);
      cap.appendChild(v);
      fig.appendChild(cap);
    }
    var old = fig.querySelector("svg");
    if (old) { fig.removeChild(old); }
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, preserveAspectRatio: "none", role: "img" });
    var max = Math.max.apply(null, vals.concat([1e-9]));
    var n = Math.max(vals.length - 1, 1);
    var coords = vals.map(function (v, i) {
      var x = (i / n) * W;
      var y = H - 2 - (v / max) * (H - 6);
      return x.toFixed(1) + "," + y.toFixed(1);
    });
    if (coords.length > 0) {
      svg.appendChild(el("polygon", { "class": "area", points: "0," + H + " " + coords.join(" ") + " " + W + "," + H }));
      svg.appendChild(el("polyline", { points: coords.join(" ") }));
    }
    var title = el("title", {});
    title.textContent = fig.getAttribute("data-title") + ", max " + fmt(max);
    svg.appendChild(title);
    fig.appendChild(svg);
    cap.querySelector(".value").textContent = vals.length ? fmt(vals[vals.length - 1]) : "–";
    fig.setAttribute("data-points", String(vals.length));
  }

  function poll(figs, ns) {
    fetch("/api/live?ns=" + encodeURIComponent(ns), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) {
        if (!d) { return; }
        figs.forEach(function (f) { draw(f, d.points || []); });
        document.body.setAttribute("data-live", String(Date.now()));
      })
      .catch(function () { /* next tick */ });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var figs = Array.prototype.slice.call(document.querySelectorAll("figure.chart"));
    if (figs.length === 0) { return; }
    var ns = document.body.getAttribute("data-ns") || "";
    poll(figs, ns);
    setInterval(function () { poll(figs, ns); }, 2000);
  });
})();
