// Visual email editor (issue 19): GrapesJS with the newsletter preset, producing the
// Jinja2 templates LuxMail's sandbox renders. Loaded only by the editor page, whose CSP
// allows inline *styles* (GrapesJS needs them) but no inline or eval'd script.
//
// LuxMail component types:
//  - luxmail-footer: the organization's locked footer; exported as the exact source the
//    server checks (campaigns/content/footer.py), and it cannot be removed, moved,
//    copied, edited or styled (the server refuses a template without it anyway).
//  - luxmail-merge: a merge field, exported as {{ path|default("…") }}.
//  - luxmail-if: a block shown only when a field has a value ({% if path is defined %}).
//  - luxmail-jinja-text: text holding Jinja (from code mode), exported without escaping
//    the Jinja parts so quotes inside {{ … }} survive.
(function () {
  "use strict";
  const configEl = document.getElementById("editor-config");
  const form = document.getElementById("visual-form");
  if (!configEl || !form || !window.grapesjs) return;
  const config = JSON.parse(configEl.textContent);
  const htmlField = document.getElementById("id_html");
  const projectField = document.getElementById("editor-project");
  const modeField = document.getElementById("editor-mode");
  const codePane = document.getElementById("code-pane");
  const canvasPane = document.getElementById("gjs");
  const statusEl = document.getElementById("editor-status");
  const phiWarning = document.getElementById("phi-warning");
  const fieldSelect = document.getElementById("merge-field");
  const defaultInput = document.getElementById("merge-default");
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const JINJA = /(\{\{[\s\S]*?\}\}|\{%[\s\S]*?%\})/;
  const FIELD_PATH = /^(contact|phi|org)\.[a-z_]+$/;
  // Filled from the editor on submit; the browser's own check would run before that.
  htmlField.required = false;
  const knownPaths = new Set(config.fields.map(function (f) { return f.path; }));

  function escapeHtml(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }
  function escapeOutsideJinja(text) {
    return text.split(JINJA).map(function (part, i) {
      return i % 2 ? part : part.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
    }).join("");
  }
  function say(message) { statusEl.textContent = message; }

  function luxmailComponents(editor) {
    const dc = editor.DomComponents;
    const locked = ["removable", "draggable", "droppable", "copyable", "editable", "stylable"];
    dc.addType("luxmail-footer", {
      isComponent: function (el) {
        return el.nodeType === 1 && el.hasAttribute("data-luxmail-footer") ? { type: "luxmail-footer" } : false;
      },
      model: {
        defaults: {
          tagName: "table",
          name: "Organization footer (locked)",
          removable: false, draggable: false, droppable: false, copyable: false,
          editable: false, stylable: false, badgable: true,
          propagate: locked,
          toolbar: [],
        },
        toHTML: function () { return config.footerHtml; },
      },
    });
    dc.addType("luxmail-merge", {
      isComponent: function (el) {
        return el.nodeType === 1 && el.hasAttribute("data-lm-merge") ? { type: "luxmail-merge" } : false;
      },
      model: {
        defaults: { tagName: "span", name: "Merge field", droppable: false, editable: false, stylable: false },
        toHTML: function () { return "{{ " + (this.getAttributes()["data-lm-merge"] || "") + " }}"; },
      },
    });
    dc.addType("luxmail-if", {
      isComponent: function (el) {
        return el.nodeType === 1 && el.hasAttribute("data-lm-if") ? { type: "luxmail-if" } : false;
      },
      model: {
        defaults: { tagName: "div", name: "Shown if field present", droppable: true },
        init: function () {
          // Imported from code mode, the block still holds its {% if %} / {% endif %} text.
          const kids = this.components();
          const first = kids.at(0);
          if (first && /^\s*\{%-?\s*if\b[\s\S]*%\}\s*$/.test(first.get("content") || "")) first.remove();
          const last = kids.at(kids.length - 1);
          if (last && /^\s*\{%-?\s*endif\s*-?%\}\s*$/.test(last.get("content") || "")) last.remove();
        },
        toHTML: function (opts) {
          const path = this.getAttributes()["data-lm-if"] || "";
          const inner = this.components().map(function (c) { return c.toHTML(opts); }).join("");
          if (!FIELD_PATH.test(path)) return "<div>" + inner + "</div>";
          return '<div data-lm-if="' + path + '">{% if ' + path + " is defined %}" + inner + "{% endif %}</div>";
        },
      },
    });
    dc.addType("luxmail-jinja-text", {
      extend: "textnode",
      isComponent: function (el) {
        return el.nodeType === 3 && JINJA.test(el.textContent) ? { type: "luxmail-jinja-text", content: el.textContent } : false;
      },
      model: { toHTML: function () { return escapeOutsideJinja(this.get("content") || ""); } },
    });
  }

  const editor = window.grapesjs.init({
    container: "#gjs",
    height: "70vh",
    fromElement: false,
    // No icon font from a CDN (CSP): GrapesJS's own icons are inline SVG.
    cssIcons: "",
    storageManager: false,
    plugins: [window["grapesjs-preset-newsletter"], luxmailComponents],
    pluginsOpts: {},
    canvas: { styles: [], scripts: [] },
    assetManager: { upload: false },
    // A click on a block appends it (to the selected component, else the page): the
    // single-pointer alternative to dragging (WCAG 2.2, 2.5.7 Dragging Movements).
    blockManager: { appendOnClick: true },
  });

  function footers() { return editor.getWrapper().find("[data-luxmail-footer]"); }
  function ensureFooter() {
    if (!footers().length) editor.getWrapper().append(config.footerHtml);
  }
  function exportHtml() {
    const body = editor.getHtml().replace(/^\s*<body[^>]*>/i, "").replace(/<\/body>\s*$/i, "");
    // "{ " keeps the CSS from opening a Jinja tag ("{#", "{{", "{%").
    const css = editor.getCss({ avoidProtected: true }).replace(/\{/g, "{ ");
    return "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n" +
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n" +
      (css.trim() ? "<style>" + css + "</style>\n" : "") +
      "</head>\n<body style=\"margin:0;padding:0\">\n" + body + "\n</body>\n</html>\n";
  }
  function loadHtml(html) {
    // A whole document: keep its <style> blocks and the body's content, not the
    // <head>'s meta and title (the export writes its own head).
    const styles = (html.match(/<style[^>]*>[\s\S]*?<\/style>/gi) || []).join("");
    const body = html.match(/<body[^>]*>([\s\S]*)<\/body>/i);
    editor.setStyle("");
    editor.setComponents(styles + (body ? body[1] : html));
    ensureFooter();
  }

  let lastExport = "";
  editor.on("load", function () {
    if (config.project) {
      editor.loadProjectData(config.project);
    } else if (htmlField.value.trim()) {
      loadHtml(htmlField.value);
    }
    ensureFooter();
    lastExport = exportHtml();
    loadSavedBlocks();
    canvasPane.dataset.ready = "1";
  });

  // --- modes: visual and code; switching keeps the content -----------------------------
  const visualButton = document.getElementById("mode-visual");
  const codeButton = document.getElementById("mode-code");
  function showMode(mode) {
    modeField.value = mode;
    codePane.hidden = mode !== "code";
    canvasPane.hidden = mode !== "visual";
    visualButton.setAttribute("aria-pressed", String(mode === "visual"));
    codeButton.setAttribute("aria-pressed", String(mode === "code"));
    visualButton.classList.toggle("outline", mode !== "visual");
    codeButton.classList.toggle("outline", mode !== "code");
  }
  codeButton.addEventListener("click", function () {
    if (modeField.value === "code") return;
    finishEditing().then(function () {
      htmlField.value = exportHtml();
      lastExport = htmlField.value;
      showMode("code");
    });
  });
  visualButton.addEventListener("click", function () {
    if (modeField.value === "visual") return;
    if (htmlField.value !== lastExport) loadHtml(htmlField.value);
    showMode("visual");
    editor.refresh();
  });
  // Text being edited lives in the canvas until its editor closes (asynchronously).
  function finishEditing() {
    const editing = editor.getEditing();
    const view = editing && editing.getView();
    return view && view.disableEditing ? Promise.resolve(view.disableEditing()) : Promise.resolve();
  }
  let submitting = false;
  form.addEventListener("submit", function (event) {
    if (submitting) return;
    event.preventDefault();
    finishEditing().then(function () {
      if (modeField.value === "visual") {
        htmlField.value = exportHtml();
        projectField.value = JSON.stringify(editor.getProjectData());
      } else {
        projectField.value = "";
      }
      submitting = true;
      form.submit();
    });
  });
  // A server error on the HTML comes back in code mode's field; start there then.
  if (modeField.value === "code") showMode("code");

  // --- merge fields and conditional blocks -------------------------------------------
  const groups = { contact: "Contact", phi: "PHI (secure channel only)", org: "Organization" };
  Object.keys(groups).forEach(function (prefix) {
    const fields = config.fields.filter(function (f) { return f.path.split(".")[0] === prefix; });
    if (!fields.length) return;
    const group = document.createElement("optgroup");
    group.label = groups[prefix];
    fields.forEach(function (f) {
      const option = document.createElement("option");
      option.value = f.path;
      option.textContent = (f.phi ? "PHI · " : "") + f.label;
      group.appendChild(option);
    });
    fieldSelect.appendChild(group);
  });
  function selectedField() {
    const path = fieldSelect.value;
    return knownPaths.has(path) ? config.fields.find(function (f) { return f.path === path; }) : null;
  }
  function updateWarning() {
    const field = selectedField();
    phiWarning.hidden = !(field && field.phi);
    phiWarning.textContent = field && field.phi ? config.phiWarning : "";
  }
  fieldSelect.addEventListener("change", updateWarning);
  updateWarning();

  function expression(field) {
    const fallback = defaultInput.value.slice(0, config.maxDefault);
    // JSON string syntax is a valid Jinja string literal (quotes and backslashes escaped).
    return fallback ? field.path + "|default(" + JSON.stringify(fallback) + ")" : field.path;
  }
  function insertionPoint() {
    // Before the locked footer: new content never lands below it.
    const footer = footers()[0];
    if (!footer) return { parent: editor.getWrapper(), at: undefined };
    let node = footer;
    while (node.parent() && node.parent() !== editor.getWrapper() && node.parent().components().length === 1) {
      node = node.parent();
    }
    return { parent: node.parent() || editor.getWrapper(), at: node.index() };
  }
  // The cursor (or selected words) of the text being edited, if the canvas still has
  // it: the field goes there, replacing the selection. Clicking the picker outside the
  // canvas leaves the canvas document's selection in place.
  // The last cursor inside the text being edited, kept as the picker takes the focus.
  let lastRange = null;
  editor.on("load", function () {
    const doc = editor.Canvas.getDocument();
    doc.addEventListener("selectionchange", function () {
      const editing = editor.getEditing();
      const selection = doc.getSelection();
      const el = editing && editing.getView() && editing.getView().el;
      if (el && selection && selection.rangeCount && el.contains(selection.getRangeAt(0).commonAncestorContainer)) {
        lastRange = selection.getRangeAt(0).cloneRange();
      }
    });
  });
  function insertAtCursor(html) {
    const editing = editor.getEditing();
    const view = editing && editing.getView();
    if (!view || !view.el || editing.closestType("luxmail-footer")) return false;
    const rte = view.activeRte || (editor.RichTextEditor && editor.RichTextEditor.globalRte);
    const doc = editor.Canvas.getDocument();
    const selection = doc && doc.getSelection();
    if (!rte || typeof rte.insertHTML !== "function" || !selection) return false;
    const inside = function (range) { return range && view.el.contains(range.commonAncestorContainer); };
    if (!(selection.rangeCount && inside(selection.getRangeAt(0)))) {
      if (!inside(lastRange)) return false;
      selection.removeAllRanges();
      selection.addRange(lastRange);
    }
    rte.insertHTML(html);
    lastRange = null;
    return true;
  }
  function mergeSpan(field) {
    const expr = expression(field);
    return '<span data-lm-merge="' + escapeHtml(expr) + '">{{ ' + escapeHtml(expr) + " }}</span>";
  }
  const mergeButton = document.getElementById("merge-insert");
  // On the press, before the click moves the focus and the canvas closes its text
  // editor: the field goes to the cursor of the text being edited, replacing any
  // selected words (a keyboard press only clicks: then the click tries).
  let insertedOnPress = false;
  mergeButton.addEventListener("mousedown", function (event) {
    const field = selectedField();
    if (!field) return;
    event.preventDefault();
    insertedOnPress = insertAtCursor(mergeSpan(field));
  });
  mergeButton.addEventListener("click", function () {
    const field = selectedField();
    if (!field) return say("Choose a merge field first.");
    const span = mergeSpan(field);
    const atCursor = insertedOnPress || insertAtCursor(span);
    insertedOnPress = false;
    // Then close the text editor (its content, the field included, syncs into the model).
    // Otherwise: as a component at the end of the selected text, or a new paragraph.
    finishEditing().then(function () {
      const selected = editor.getSelected();
      if (atCursor) {
        // Already in place.
      } else if (selected && selected.is("text") && !selected.closestType("luxmail-footer")) {
        if (!selected.components().length && selected.get("content")) {
          selected.components(selected.get("content"));
          selected.set("content", "");
        }
        selected.append({ type: "textnode", content: " " });
        selected.append(span);
      } else {
        const point = insertionPoint();
        point.parent.append('<p style="margin:0 0 16px;font-family:Arial,Helvetica,sans-serif;font-size:16px">' + span + "</p>", { at: point.at });
      }
      say("Inserted " + field.path + (field.phi ? " (PHI: the template becomes PHI-bearing)." : "."));
    });
  });
  document.getElementById("merge-if").addEventListener("click", function () {
    const field = selectedField();
    if (!field) return say("Choose a merge field first.");
    const point = insertionPoint();
    point.parent.append(
      '<div data-lm-if="' + field.path + '"><p style="margin:0 0 16px;font-family:Arial,Helvetica,sans-serif;font-size:16px">' +
        "Shown only when " + escapeHtml(field.label) + " has a value.</p></div>",
      { at: point.at });
    say("Added a block shown only when " + field.path + " has a value.");
  });

  // --- saved blocks (per organization, through the API) --------------------------------
  function addSavedBlock(block) {
    editor.BlockManager.add("saved-" + block.id, {
      label: escapeHtml(block.name),
      category: "Saved blocks",
      content: block.html,
      attributes: { title: block.name },
    });
  }
  function loadSavedBlocks() {
    fetch(config.blocksUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : { results: [] }; })
      .then(function (data) { (data.results || []).forEach(addSavedBlock); })
      .catch(function () { say("Saved blocks could not be loaded."); });
  }
  document.getElementById("block-save").addEventListener("click", function () {
    const selected = editor.getSelected();
    const label = document.getElementById("block-label").value.trim();
    if (!selected || selected === editor.getWrapper()) return say("Select a part of the design first.");
    if (selected.closestType("luxmail-footer") || selected.is("luxmail-footer")) {
      return say("The organization footer is locked and cannot be saved as a block.");
    }
    if (!label) return say("Give the block a name.");
    fetch(config.blocksUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
      body: JSON.stringify({ name: label, html: selected.toHTML() }),
    }).then(function (r) {
      return r.json().then(function (data) { return { ok: r.ok, data: data }; });
    }).then(function (result) {
      if (!result.ok) return say("Block not saved: " + (result.data.detail || "check the name and content."));
      addSavedBlock(result.data);
      say("Saved block “" + result.data.name + "” for everyone in the organization.");
    }).catch(function () { say("Block not saved: the server could not be reached."); });
  });

  // Clearing the canvas or importing code replaces every component, the locked footer
  // too: put it back (the server would refuse the template without it).
  editor.on("component:remove", function () { window.setTimeout(ensureFooter, 0); });

  // The locked footer: say why instead of silently refusing.
  editor.on("component:selected", function (component) {
    if (component && (component.is("luxmail-footer") || component.closestType("luxmail-footer"))) {
      say("The organization footer is locked: it cannot be removed, moved or edited. Admins set its text in Settings.");
    }
  });
  window.luxmailEditor = editor; // for the browser test and the curious
})();
