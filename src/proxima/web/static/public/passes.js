// "Use my location": fills latitude, longitude and time zone from the browser, then submits.
(function () {
  "use strict";
  var button = document.getElementById("locate");
  var status = document.getElementById("locate-status");
  if (!button || !navigator.geolocation) { return; }
  button.hidden = false;
  button.addEventListener("click", function () {
    status.textContent = "Asking the browser for your position\u2026";
    navigator.geolocation.getCurrentPosition(function (pos) {
      var form = button.form;
      document.getElementById("lat").value = pos.coords.latitude.toFixed(4);
      document.getElementById("lon").value = pos.coords.longitude.toFixed(4);
      try {
        document.getElementById("tz").value = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
      } catch (e) { /* no Intl: the server picks the zone of the nearest city */ }
      form.elements.place.value = "";
      status.textContent = "";
      form.submit();
    }, function (err) {
      status.textContent = "Position not available (" + err.message + "): type a place instead.";
    }, { enableHighAccuracy: false, timeout: 15000, maximumAge: 600000 });
  });
})();
