// The Overview's filter form: a changed filter applies at once (the form still works without this,
// with its "Apply" button); a preset period clears custom dates, and custom dates clear the preset.
(function () {
  const form = document.getElementById("overview-filters");
  if (!form) return;
  form.addEventListener("change", function (event) {
    const name = event.target.name;
    if (name === "period") {
      form.elements.from.value = "";
      form.elements.to.value = "";
    }
    if ((name === "from" || name === "to") && !(form.elements.from.value && form.elements.to.value)) return;
    // Empty fields stay out of the URL, so a bookmarked view reads cleanly.
    const params = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (value) params.append(key, value);
    window.location.search = params.toString();
  });
})();
