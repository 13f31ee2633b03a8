// Journey builder forms (templates/journeys/): show only the fieldsets of the chosen
// mode — a wait's duration / date / window, a branch's condition / engagement, an
// update's field / list, a trigger's segment / list / date / events. A fieldset
// declares data-mode-for="<group>" and data-when="<values…>"; the control is the
// select or radio group carrying data-journey-mode="<group>". Without JavaScript every
// fieldset stays visible and the server uses the one the mode names. No inline script
// (CSP): this file only.
(function () {
  "use strict";

  function chosen(group) {
    var controls = document.querySelectorAll('[data-journey-mode="' + group + '"]');
    for (var i = 0; i < controls.length; i += 1) {
      var control = controls[i];
      if (control.tagName === "SELECT") return control.value;
      if (control.checked) return control.value;
    }
    return null;
  }

  function refresh() {
    var sets = document.querySelectorAll("fieldset.journey-mode[data-mode-for]");
    Array.prototype.forEach.call(sets, function (set) {
      var value = chosen(set.getAttribute("data-mode-for"));
      if (value === null) return;
      var wanted = (set.getAttribute("data-when") || "").split(/\s+/);
      set.classList.toggle("hidden", wanted.indexOf(value) === -1);
    });
  }

  function start() {
    document.addEventListener("change", function (event) {
      if (event.target && event.target.hasAttribute && event.target.hasAttribute("data-journey-mode")) refresh();
    });
    refresh();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
