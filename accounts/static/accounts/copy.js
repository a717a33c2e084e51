// Copy buttons and the Check button's inline results, for the /me/ pages and the API key admin.
// <button class="copy" data-copy="ID"> copies the text of element ID. The Clipboard API needs a secure
// context (https or localhost); on plain http the text is selected instead, for Ctrl+C.
(function () {
  "use strict";

  function selectText(el) {
    var range = document.createRange();
    range.selectNodeContents(el);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function say(button, text) {
    var label = button.dataset.label || button.textContent;
    button.dataset.label = label;
    button.textContent = text;
    clearTimeout(button._reset);
    button._reset = setTimeout(function () { button.textContent = label; }, 2500);
  }

  function copy(button) {
    var el = document.getElementById(button.dataset.copy);
    if (!el) return;
    var text = el.value !== undefined ? el.value : el.textContent;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { say(button, "Copied"); },
        function () { selectText(el); say(button, "Selected: press Ctrl+C"); });
    } else {
      selectText(el);
      say(button, "Selected: press Ctrl+C");
    }
  }

  // The Check form posts the key and shows the results in place, so the page (and a new key on it)
  // stays; without this script the form posts to the check page, which shows the same table.
  function check(form) {
    var target = document.getElementById(form.dataset.checkTarget);
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    button.textContent = "Checking…";
    target.innerHTML = "";
    fetch(form.action, {method: "POST", body: new FormData(form), credentials: "same-origin",
                        headers: {"X-Requested-With": "fetch"}})
      .then(function (response) { return response.text(); })
      .then(function (html) { target.innerHTML = html; })
      .catch(function (error) { target.textContent = "The check could not run: " + error; })
      .finally(function () { button.disabled = false; button.textContent = "Check"; });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.copy");
    if (button) { event.preventDefault(); copy(button); }
  });
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form.check-form");
    if (form && window.fetch) { event.preventDefault(); check(form); }
  });
})();
