// The calendar's drag-to-reschedule: drop a post on a free slot (its time) or on a day (same time).
(function () {
  const token = document.querySelector('meta[name="csrf-token"]').content;
  let dragged = null;
  document.querySelectorAll(".post[draggable]").forEach((el) => {
    el.addEventListener("dragstart", (e) => { dragged = el; e.dataTransfer.setData("text/plain", el.dataset.post); });
  });
  function target(el) { return el.closest(".slot") || el.closest(".day"); }
  document.querySelectorAll(".day, .slot").forEach((el) => {
    el.addEventListener("dragover", (e) => { e.preventDefault(); el.classList.add("over"); });
    el.addEventListener("dragleave", () => el.classList.remove("over"));
    el.addEventListener("drop", async (e) => {
      e.preventDefault(); e.stopPropagation();
      const where = target(e.target); if (!dragged || !where) return;
      let at = where.dataset.at;
      if (!at) { at = where.dataset.day + dragged.dataset.at.slice(10); }
      const body = new URLSearchParams({ at: at, tz: "UTC" });
      const r = await fetch("/console/posts/" + dragged.dataset.post + "/schedule",
        { method: "POST", body: body, headers: { "X-CSRF-Token": token }, credentials: "same-origin" });
      if (!r.ok) { alert("Not rescheduled: " + (await r.text()).replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim().slice(0, 300)); }
      location.reload();
    });
  });
})();
