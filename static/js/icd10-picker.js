// ICD-10-CM picker: an accessible combobox (WAI-ARIA 1.2 "list autocomplete") over a
// text input, searching code and description on the server ("diab" -> E11.9 Type 2
// diabetes mellitus without complications). Progressive enhancement: without this file
// the input still takes codes typed by hand.
//
// Use: <input data-icd10-picker="list"> (comma-separated codes: the picked code
// replaces the term being typed) or data-icd10-picker="one", or from other scripts
// window.LuxIcd10.attach(input, {multiple: true}). The endpoint comes from this
// script tag's data-url. Keys: Down/Up move, Enter picks, Escape closes.
(function () {
  "use strict";
  var script = document.currentScript;
  var url = script && script.dataset.url;
  var counter = 0;

  function currentTerm(input, multiple) {
    if (!multiple) return input.value.trim();
    var parts = input.value.split(",");
    return parts[parts.length - 1].trim();
  }

  function attach(input, options) {
    if (!url || input.dataset.icd10Attached) return;
    input.dataset.icd10Attached = "1";
    var multiple = Boolean(options && options.multiple);
    var id = "icd10-list-" + (++counter);
    var list = document.createElement("ul");
    list.id = id;
    list.className = "icd10-options";
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-label", "Matching ICD-10-CM codes");
    list.hidden = true;
    var status = document.createElement("span");
    status.className = "visually-hidden";
    status.setAttribute("role", "status");
    status.setAttribute("aria-live", "polite");
    var wrap = document.createElement("div");
    wrap.className = "icd10-picker";
    input.parentNode.insertBefore(wrap, input);
    wrap.appendChild(input);
    wrap.appendChild(list);
    wrap.appendChild(status);
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", id);
    input.setAttribute("autocomplete", "off");
    if (!input.placeholder) input.placeholder = "type a code or a name, e.g. diabetes";
    var results = [];
    var active = -1;
    var timer = null;
    var sequence = 0;

    function close() {
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }

    function highlight(index) {
      var items = list.querySelectorAll("[role=option]");
      items.forEach(function (item, i) { item.setAttribute("aria-selected", i === index ? "true" : "false"); });
      active = index;
      if (index >= 0 && items[index]) {
        input.setAttribute("aria-activedescendant", items[index].id);
        items[index].scrollIntoView({ block: "nearest" });
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function pick(index) {
      var chosen = results[index];
      if (!chosen) return;
      if (multiple) {
        var parts = input.value.split(",").map(function (s) { return s.trim(); });
        parts[parts.length - 1] = chosen.code;
        input.value = parts.filter(Boolean).join(", ");
      } else {
        input.value = chosen.code;
      }
      close();
      status.textContent = chosen.code + " " + chosen.description + " chosen";
      input.dispatchEvent(new Event("input", { bubbles: true }));
      input.dispatchEvent(new Event("change", { bubbles: true }));
      if (options && options.onPick) options.onPick(chosen);
    }

    function render() {
      list.textContent = "";
      results.forEach(function (item, i) {
        var option = document.createElement("li");
        option.id = id + "-" + i;
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", "false");
        var code = document.createElement("strong");
        code.textContent = item.code;
        option.appendChild(code);
        option.appendChild(document.createTextNode(" " + item.description));
        // mousedown, not click: fires before the input's blur closes the list.
        option.addEventListener("mousedown", function (event) { event.preventDefault(); pick(i); });
        list.appendChild(option);
      });
      var open = results.length > 0;
      list.hidden = !open;
      input.setAttribute("aria-expanded", open ? "true" : "false");
      status.textContent = open ? results.length + " codes found" : "No matching code";
      active = -1;
    }

    function lookup() {
      var term = currentTerm(input, multiple);
      if (term.length < 2) { results = []; close(); return; }
      var mine = ++sequence;
      fetch(url + "?q=" + encodeURIComponent(term.slice(0, 60)), {
        credentials: "same-origin",
        headers: { Accept: "application/json" }
      })
        .then(function (response) { return response.ok ? response.json() : { results: [] }; })
        .then(function (data) {
          if (mine !== sequence) return; // an older answer arriving late
          results = data.results || [];
          render();
        })
        .catch(function () { results = []; close(); });
    }

    input.addEventListener("input", function (event) {
      if (!event.isTrusted) return; // our own event after a pick
      clearTimeout(timer);
      timer = setTimeout(lookup, 150);
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "ArrowDown") {
        if (list.hidden) { lookup(); return; }
        event.preventDefault();
        highlight(Math.min(active + 1, results.length - 1));
      } else if (event.key === "ArrowUp") {
        event.preventDefault();
        highlight(Math.max(active - 1, 0));
      } else if (event.key === "Enter" && !list.hidden && active >= 0) {
        event.preventDefault();
        pick(active);
      } else if (event.key === "Escape" && !list.hidden) {
        event.preventDefault();
        close();
      }
    });
    input.addEventListener("blur", function () { setTimeout(close, 100); });
  }

  function scan(root) {
    (root || document).querySelectorAll("input[data-icd10-picker]").forEach(function (input) {
      attach(input, { multiple: input.dataset.icd10Picker === "list" });
    });
  }
  window.LuxIcd10 = { attach: attach, scan: scan };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { scan(); });
  else scan();
})();
