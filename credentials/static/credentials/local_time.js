// Rewrites each <time class="local-time" datetime="..."> to the browser's own time zone.
// The server renders UTC text, so the page reads correctly without this script.
(function () {
  "use strict";
  function localise() {
    var fmt = new Intl.DateTimeFormat(undefined, {weekday: "short", day: "numeric", month: "short",
                                                  hour: "2-digit", minute: "2-digit", timeZoneName: "short"});
    document.querySelectorAll("time.local-time[datetime]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when.getTime())) return;
      el.title = el.textContent;  // the UTC text stays on hover
      el.textContent = fmt.format(when);
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", localise);
  else localise();
})();
