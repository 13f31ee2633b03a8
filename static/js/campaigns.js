// Template editor: refresh the sandboxed preview frame shortly after typing stops.
(function () {
  const form = document.querySelector("form[data-live-preview]");
  const button = document.getElementById("preview-button");
  if (!form || !button) return;
  let timer = null;
  const refresh = function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(function () { button.click(); }, 600);
  };
  form.addEventListener("input", refresh);
  refresh();
})();
