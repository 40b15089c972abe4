// Moves the station marker on the home page map: polls the JSON every few seconds.
(function () {
  "use strict";
  var map = document.getElementById("world-map");
  if (!map || !window.fetch) { return; }
  var api = map.getAttribute("data-api") || "/api/station";
  var every = Math.max(2, parseFloat(map.getAttribute("data-refresh-s")) || 5) * 1000;
  var marker = document.getElementById("station-marker");
  var track = document.getElementById("track");
  var night = document.getElementById("night");

  function text(id, value) {
    var el = document.getElementById(id);
    if (el) { el.textContent = value; }
  }
  function hemi(v, pos, neg) { return Math.abs(v).toFixed(2) + "\u00b0" + (v >= 0 ? pos : neg); }

  function show(s) {
    marker.setAttribute("cx", s.map.x);
    marker.setAttribute("cy", s.map.y);
    marker.setAttribute("data-lat", s.lat);
    marker.setAttribute("data-lon", s.lon);
    marker.classList.toggle("eclipsed", !s.sunlit);
    if (s.track && track.getAttribute("d") !== s.track.path) { track.setAttribute("d", s.track.path); }
    if (s.night_path && night.getAttribute("d") !== s.night_path) { night.setAttribute("d", s.night_path); }
    var t = document.getElementById("st-time");
    if (t) { t.setAttribute("datetime", s.time); t.textContent = s.time; }
    text("st-pos", hemi(s.lat, "N", "S") + " " + hemi(s.lon, "E", "W"));
    text("st-alt", s.alt_km.toFixed(1) + " km");
    text("st-speed", s.speed_km_s.toFixed(2) + " km/s (" +
      Math.round(s.speed_km_s * 3600).toLocaleString("en") + " km/h)");
    text("st-sun", s.sunlit ? "sunlit" : "eclipsed (in the Earth's shadow)");
    text("st-elements", "epoch " + s.elements.epoch + ", " + s.elements.age_text);
  }

  function poll() {
    fetch(api, { headers: { "Accept": "application/json" }, cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) { if (s) { show(s); } })
      .catch(function () { /* offline for a moment: try again at the next tick */ })
      .then(function () { window.setTimeout(poll, every); });
  }
  window.setTimeout(poll, every);
})();
