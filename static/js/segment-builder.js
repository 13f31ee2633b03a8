// Segment builder (contacts/views/segments.py): edits a rule tree of nested all / any /
// none groups of {field, op, value} conditions, keeps the "Rules as JSON" textarea in
// sync and fires "rules-changed" on the form, which HTMX turns into a debounced POST
// to the preview endpoint (live count + masked sample). Problems the server reports
// come back with their path in the tree ("all[1].any[0]") and are shown next to that
// condition. No inline script or style: CSP allows only this file.
(function () {
  "use strict";

  var MAX_DEPTH = 3;
  var uid = 0;

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else if (key === "className") node.className = attrs[key];
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  function nextId(prefix) { uid += 1; return prefix + "-" + uid; }

  function Builder(root, data, textarea, form) {
    this.root = root;
    this.fields = data.fields || [];
    this.byField = {};
    var self = this;
    this.fields.forEach(function (f) { self.byField[f.field] = f; });
    this.operators = data.operators || {};
    this.lists = data.lists || [];
    this.readonly = !!data.readonly;
    this.textarea = textarea;
    this.form = form;
    this.tree = this.fromRules(data.rules);
  }

  // --- model: {type: "group", mode, children} / {type: "condition", field, op, value}

  Builder.prototype.fromRules = function (node) {
    var self = this;
    function group(mode, children) {
      return { type: "group", mode: mode, children: (children || []).map(walk) };
    }
    function walk(item) {
      if (!item || typeof item !== "object") return { type: "condition", field: "", op: "", value: "" };
      if (Array.isArray(item.all)) return group("all", item.all);
      if (Array.isArray(item.any)) return group("any", item.any);
      if ("not" in item) {
        var inner = item.not;
        if (Array.isArray(inner)) return group("notall", inner);
        if (inner && Array.isArray(inner.any)) return group("none", inner.any);
        if (inner && Array.isArray(inner.all)) return group("notall", inner.all);
        return group("none", [inner]);
      }
      return { type: "condition", field: item.field || "", op: item.op || "", value: item.value === undefined ? "" : item.value };
    }
    var tree = walk(node && typeof node === "object" ? node : { all: [] });
    if (tree.type !== "group") tree = { type: "group", mode: "all", children: [tree] };
    return tree;
  };

  Builder.prototype.toRules = function (node) {
    var self = this;
    if (!node) node = this.tree;
    if (node.type === "condition") {
      var out = { field: node.field, op: node.op };
      if (node.op !== "exists" || node.value !== "") out.value = node.value;
      if (node.op === "exists" && (node.value === "" || node.value === undefined)) out.value = true;
      return out;
    }
    var children = node.children.map(function (c) { return self.toRules(c); });
    if (node.mode === "any") return { any: children };
    if (node.mode === "none") return { not: { any: children } };
    if (node.mode === "notall") return { not: children };
    return { all: children };
  };

  // The path of each node as contacts/segments.py reports it.
  function childPrefix(path, group) {
    var key = group.mode === "any" ? "any" : group.mode === "all" ? "all" : "not";
    if (group.mode === "none") return (path ? path + ".not" : "not") + ".any";
    return path ? path + "." + key : key;
  }

  // --- rendering ---------------------------------------------------------------------------

  Builder.prototype.render = function () {
    this.root.textContent = "";
    this.root.appendChild(this.renderGroup(this.tree, "", 0, null));
    // Condition values get the ICD-10-CM picker (icd10-picker.js) once in the page.
    if (window.LuxIcd10 && !this.readonly) window.LuxIcd10.scan(this.root);
  };

  Builder.prototype.renderGroup = function (group, path, depth, parent) {
    var self = this;
    var box = el("div", { className: "rule-group depth-" + depth, "data-path": path || "rules" });
    var modeId = nextId("mode");
    var mode = el("select", { id: modeId, className: "group-mode" });
    [["all", "all of"], ["any", "any of"], ["none", "none of"], ["notall", "not all of"]].forEach(function (m) {
      var option = el("option", { value: m[0], text: m[1] });
      if (group.mode === m[0]) option.selected = true;
      mode.appendChild(option);
    });
    mode.disabled = this.readonly;
    mode.addEventListener("change", function () { group.mode = mode.value; self.changed(true); });
    var head = el("div", { className: "group-head" }, [
      el("label", { for: modeId, text: depth === 0 ? "Contacts matching" : "Group: matching" }), mode,
      el("span", { className: "muted", text: "these conditions:" }),
    ]);
    if (parent && !this.readonly) {
      var remove = el("button", { type: "button", className: "secondary outline small", text: "Remove group" });
      remove.addEventListener("click", function () {
        parent.children.splice(parent.children.indexOf(group), 1);
        self.changed(true);
      });
      head.appendChild(remove);
    }
    box.appendChild(head);
    box.appendChild(el("small", { className: "error rule-error", role: "alert", "data-error-for": path || "rules" }));
    var list = el("ol", { className: "rule-children" });
    var prefix = childPrefix(path, group);
    group.children.forEach(function (child, index) {
      var childPath = prefix + "[" + index + "]";
      var item = el("li");
      item.appendChild(child.type === "group"
        ? self.renderGroup(child, childPath, depth + 1, group)
        : self.renderCondition(child, childPath, group));
      list.appendChild(item);
    });
    box.appendChild(list);
    if (!this.readonly) {
      var addCondition = el("button", { type: "button", className: "secondary small add-condition", text: "+ Condition" });
      addCondition.addEventListener("click", function () {
        group.children.push({ type: "condition", field: "", op: "", value: "" });
        self.changed(true, true);
      });
      var actions = el("div", { className: "group-actions" }, [addCondition]);
      if (depth < MAX_DEPTH - 1) {
        var addGroup = el("button", { type: "button", className: "secondary outline small add-group", text: "+ Group" });
        addGroup.addEventListener("click", function () {
          group.children.push({ type: "group", mode: "any", children: [{ type: "condition", field: "", op: "", value: "" }] });
          self.changed(true, true);
        });
        actions.appendChild(addGroup);
      }
      box.appendChild(actions);
    }
    return box;
  };

  Builder.prototype.fieldSelect = function (condition, id) {
    var select = el("select", { id: id, className: "cond-field" });
    select.appendChild(el("option", { value: "", text: "Choose a field…" }));
    var groups = {};
    this.fields.forEach(function (f) {
      if (!groups[f.group]) {
        groups[f.group] = el("optgroup", { label: f.group });
        select.appendChild(groups[f.group]);
      }
      var option = el("option", { value: f.field, text: f.label + (f.phi ? " (PHI)" : "") });
      if (f.field === condition.field) option.selected = true;
      groups[f.group].appendChild(option);
    });
    if (condition.field && !this.byField[condition.field]) {
      var unknown = el("option", { value: condition.field, text: condition.field + " (not available)" });
      unknown.selected = true;
      select.appendChild(unknown);
    }
    return select;
  };

  Builder.prototype.renderCondition = function (condition, path, parent) {
    var self = this;
    var spec = this.byField[condition.field];
    var row = el("div", { className: "rule-condition", "data-path": path });
    var fieldId = nextId("field");
    var opId = nextId("op");
    var fieldSelect = this.fieldSelect(condition, fieldId);
    fieldSelect.disabled = this.readonly;
    fieldSelect.addEventListener("change", function () {
      condition.field = fieldSelect.value;
      var next = self.byField[condition.field];
      condition.op = next ? next.ops[0] : "";
      condition.value = self.defaultValue(next, condition.op);
      self.changed(true);
    });
    var opSelect = el("select", { id: opId, className: "cond-op" });
    (spec ? spec.ops : []).forEach(function (op) {
      var option = el("option", { value: op, text: self.operators[op] || op });
      if (op === condition.op) option.selected = true;
      opSelect.appendChild(option);
    });
    opSelect.disabled = this.readonly || !spec;
    opSelect.addEventListener("change", function () {
      var before = condition.op;
      condition.op = opSelect.value;
      if (self.valueShape(spec, before) !== self.valueShape(spec, condition.op)) {
        condition.value = self.defaultValue(spec, condition.op);
      }
      self.changed(true);
    });
    var parts = [
      el("div", { className: "cond-part" }, [el("label", { for: fieldId, text: "Field" }), fieldSelect]),
      el("div", { className: "cond-part" }, [el("label", { for: opId, text: "Operator" }), opSelect]),
      el("div", { className: "cond-part cond-value" }, this.valueWidgets(condition, spec)),
    ];
    if (!this.readonly) {
      var remove = el("button", { type: "button", className: "secondary outline small remove-condition", "aria-label": "Remove condition", text: "✕" });
      remove.addEventListener("click", function () {
        parent.children.splice(parent.children.indexOf(condition), 1);
        self.changed(true);
      });
      parts.push(el("div", { className: "cond-part cond-remove" }, [remove]));
    }
    row.appendChild(el("div", { className: "cond-line" }, parts));
    if (spec && spec.help) row.appendChild(el("small", { className: "muted", text: spec.help }));
    row.appendChild(el("small", { className: "error rule-error", role: "alert", "data-error-for": path }));
    return row;
  };

  // Which kind of value an operator takes: changing between shapes resets the value.
  Builder.prototype.valueShape = function (spec, op) {
    if (!spec) return "none";
    if (op === "exists") return "bool";
    if (op === "between") return "pair";
    if (op === "in" || op === "not_in") return "many";
    if (op === "within_last_days" || op === "more_than_days_ago") return "days";
    return "one";
  };

  Builder.prototype.defaultValue = function (spec, op) {
    var shape = this.valueShape(spec, op);
    if (shape === "bool") return true;
    if (shape === "pair") return ["", ""];
    if (shape === "many") return [];
    return "";
  };

  Builder.prototype.options = function (spec) {
    if (spec.type === "list") return this.lists.map(function (l) { return [l.id, l.name]; });
    return (spec.choices || []).map(function (c) { return [c, c.replace(/_/g, " ")]; });
  };

  Builder.prototype.valueWidgets = function (condition, spec) {
    var self = this;
    var id = nextId("value");
    var label = el("label", { for: id, text: "Value" });
    if (!spec) return [label, el("input", { id: id, type: "text", disabled: "disabled", placeholder: "choose a field first" })];
    var shape = this.valueShape(spec, condition.op);
    var disabled = this.readonly;
    function input(type, value, onValue, extra) {
      var attrs = Object.assign({ id: id, type: type }, extra || {});
      var node = el("input", attrs);
      node.value = value === undefined || value === null ? "" : String(value);
      node.disabled = disabled;
      node.addEventListener("input", function () { onValue(node.value); self.changed(false); });
      node.addEventListener("change", function () { onValue(node.value); self.changed(false); });
      return node;
    }
    var numeric = spec.type === "age" || spec.type === "number";
    var inputType = spec.type === "date" ? "date" : numeric ? "number" : "text";
    if (shape === "bool") {
      var yesNo = el("select", { id: id });
      [["true", "is set"], ["false", "is not set"]].forEach(function (o) {
        var option = el("option", { value: o[0], text: o[1] });
        if (String(condition.value !== false) === o[0]) option.selected = true;
        yesNo.appendChild(option);
      });
      yesNo.disabled = disabled;
      yesNo.addEventListener("change", function () { condition.value = yesNo.value === "true"; self.changed(false); });
      return [label, yesNo];
    }
    if (shape === "days") {
      return [el("label", { for: id, text: "Days" }), input("number", condition.value, function (v) {
        condition.value = v === "" ? "" : parseInt(v, 10);
      }, { min: "0", step: "1", inputmode: "numeric" })];
    }
    if (shape === "pair") {
      var pair = Array.isArray(condition.value) ? condition.value : ["", ""];
      condition.value = pair;
      var convert = function (v) { return numeric && v !== "" ? parseInt(v, 10) : v; };
      var first = input(inputType, pair[0], function (v) { pair[0] = convert(v); });
      var secondId = nextId("value");
      var second = input(inputType, pair[1], function (v) { pair[1] = convert(v); });
      second.id = secondId;
      return [label, first, el("label", { for: secondId, className: "and-label", text: "and" }), second];
    }
    var choices = spec.type === "choice" || spec.type === "list";
    if (shape === "many" && choices) {
      var chosen = Array.isArray(condition.value) ? condition.value : [];
      condition.value = chosen;
      var box = el("fieldset", { className: "cond-choices" }, [el("legend", { text: "Values" })]);
      this.options(spec).forEach(function (pair) {
        var boxId = nextId("choice");
        var check = el("input", { type: "checkbox", id: boxId, value: String(pair[0]) });
        check.checked = chosen.map(String).indexOf(String(pair[0])) !== -1;
        check.disabled = disabled;
        check.addEventListener("change", function () {
          var value = spec.type === "list" ? parseInt(check.value, 10) : check.value;
          var at = chosen.map(String).indexOf(String(value));
          if (check.checked && at === -1) chosen.push(value);
          if (!check.checked && at !== -1) chosen.splice(at, 1);
          self.changed(false);
        });
        box.appendChild(el("label", { for: boxId }, [check, document.createTextNode(" " + pair[1])]));
      });
      return [box];
    }
    if (shape === "many") {
      var text = Array.isArray(condition.value) ? condition.value.join(", ") : "";
      condition.value = Array.isArray(condition.value) ? condition.value : [];
      return [el("label", { for: id, text: "Values (comma-separated)" }), input("text", text, function (v) {
        condition.value = v.split(",").map(function (s) { return s.trim(); }).filter(Boolean)
          .map(function (s) { return numeric && /^-?\d+$/.test(s) ? parseInt(s, 10) : s; });
      }, spec.type === "code" ? { "data-icd10-picker": "list" } : {})];
    }
    if (choices) {
      var select = el("select", { id: id });
      select.appendChild(el("option", { value: "", text: "Choose…" }));
      this.options(spec).forEach(function (pair) {
        var option = el("option", { value: String(pair[0]), text: pair[1] });
        if (String(condition.value) === String(pair[0])) option.selected = true;
        select.appendChild(option);
      });
      select.disabled = disabled;
      select.addEventListener("change", function () {
        condition.value = spec.type === "list" && select.value !== "" ? parseInt(select.value, 10) : select.value;
        self.changed(false);
      });
      return [label, select];
    }
    var placeholder = spec.type === "code" ? "e.g. E11 or E11.9" : spec.type === "age" ? "years" : "";
    var extra = placeholder ? { placeholder: placeholder } : {};
    if (spec.type === "code") extra["data-icd10-picker"] = "one";
    return [label, input(inputType, condition.value, function (v) {
      condition.value = numeric && v !== "" && /^-?\d+$/.test(v) ? parseInt(v, 10) : v;
    }, extra)];
  };

  // --- sync and problems ---------------------------------------------------------------------

  Builder.prototype.changed = function (rerender, focusLast) {
    if (rerender) {
      this.render();
      if (focusLast) {
        var selects = this.root.querySelectorAll(".cond-field");
        if (selects.length) selects[selects.length - 1].focus();
      }
    }
    this.textarea.value = JSON.stringify(this.toRules());
    this.form.dispatchEvent(new CustomEvent("rules-changed", { bubbles: true }));
  };

  Builder.prototype.showProblems = function (problems) {
    var slots = this.root.querySelectorAll("[data-error-for]");
    var byPath = {};
    Array.prototype.forEach.call(slots, function (slot) {
      slot.textContent = "";
      byPath[slot.getAttribute("data-error-for")] = slot;
      var owner = slot.parentNode;
      if (owner) owner.classList.remove("has-error");
    });
    (problems || []).forEach(function (problem) {
      var slot = byPath[problem.path] || byPath.rules;
      if (!slot) return;
      slot.textContent = (slot.textContent ? slot.textContent + " " : "") + problem.message;
      slot.parentNode.classList.add("has-error");
    });
  };

  function readJSON(id) {
    var node = document.getElementById(id);
    if (!node) return null;
    try { return JSON.parse(node.textContent); } catch (e) { return null; }
  }

  function start() {
    var root = document.getElementById("builder-root");
    var form = document.getElementById("segment-form");
    var data = readJSON("segment-builder-data");
    var textarea = form ? form.querySelector("textarea[name=rules]") : null;
    if (!root || !form || !data || !textarea) return;
    var builder = new Builder(root, data, textarea, form);
    builder.render();
    builder.showProblems(data.problems);
    textarea.value = JSON.stringify(builder.toRules());
    var apply = document.getElementById("apply-json");
    if (apply) {
      apply.addEventListener("click", function () {
        try {
          builder.tree = builder.fromRules(JSON.parse(textarea.value));
        } catch (e) {
          builder.showProblems([{ path: "rules", message: "The JSON cannot be read: " + e.message }]);
          return;
        }
        builder.changed(true);
      });
    }
    document.body.addEventListener("htmx:afterSwap", function (event) {
      if (event.target && event.target.id === "segment-preview") {
        var holder = document.getElementById("segment-problems");
        var found = [];
        try { found = JSON.parse(holder ? holder.getAttribute("data-problems") : "[]"); } catch (e) { found = []; }
        builder.showProblems(found);
      }
    });
    window.luxmailSegmentBuilder = builder;
    // HTMX binds hx-trigger on DOMContentLoaded too; ask for the first count after it.
    if (!data.locked) {
      window.setTimeout(function () {
        form.dispatchEvent(new CustomEvent("rules-changed", { bubbles: true }));
      }, 0);
    }
  }

  if (document.readyState === "complete") start();
  else document.addEventListener("DOMContentLoaded", start);
})();
