/* Leadflow landing-page forms (docs/landing-page.md). Optional: without this script a
 * <form data-leadflow> still posts as plain HTML and the visitor is sent to the thank-you page.
 * With it, the visitor stays on the page: the thank-you or the field errors show in place. */
(function () {
  "use strict";

  var GENERAL = "Sorry, your details could not be sent. Please try again in a moment.";
  var THANKS = "Thank you \u2014 we\u2019ll be in touch.";

  function uuid() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    // randomUUID exists only on https pages (and localhost); getRandomValues everywhere.
    var b = window.crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  // The fields as strings, the last of a repeated name winning: what the plain form post sends,
  // so a page answers the same with or without this script.
  function fields(form) {
    var body = {};
    new FormData(form).forEach(function (value, name) {
      if (typeof value === "string") {
        body[name] = value;
      }
    });
    return body;
  }

  // The form's own elements first, then its container's: a thank-you or a message slot usually
  // sits next to the form.
  function find(form, selector) {
    return form.querySelector(selector) || (form.parentNode && form.parentNode.querySelector(selector));
  }

  function note(text, role) {
    var p = document.createElement("p");
    p.setAttribute("role", role);
    p.setAttribute("data-leadflow-inserted", "");
    p.className = role === "alert" ? "leadflow-error" : "leadflow-thanks";
    p.textContent = text;
    return p;
  }

  function clear(form) {
    form.querySelectorAll("[data-leadflow-inserted]").forEach(function (el) { el.remove(); });
    (form.parentNode || form).querySelectorAll("[data-leadflow-error], [data-leadflow-message]").forEach(function (el) {
      el.textContent = "";
    });
    form.querySelectorAll("[data-leadflow-invalid]").forEach(function (el) {
      el.removeAttribute("aria-invalid");
      el.removeAttribute("data-leadflow-invalid");
    });
  }

  function showGeneral(form, message) {
    var slot = find(form, "[data-leadflow-message]");
    if (slot) {
      slot.textContent = message;
      slot.hidden = false;
    } else {
      form.appendChild(note(message, "alert"));
    }
  }

  // Answers the input it marked, or null when the form has no place for this field's error.
  function showFieldError(form, field, message) {
    var input = form.elements.namedItem(field);
    if (input && !(input instanceof Element)) {
      input = input[0];
    }
    var slot = find(form, '[data-leadflow-error="' + CSS.escape(field) + '"]');
    if (!input && !slot) {
      return null;
    }
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("data-leadflow-invalid", "");
    }
    if (slot) {
      slot.textContent = message;
      slot.hidden = false;
    } else {
      // After a checkbox's label rather than inside it.
      var label = input.closest("label");
      var anchor = label && form.contains(label) ? label : input;
      anchor.insertAdjacentElement("afterend", note(message, "alert"));
    }
    return input || slot;
  }

  // {"error": {"code", "message", "field", "problems": [{"field", "code", "message"}]}}
  function showFieldErrors(form, error) {
    var problems = error.problems && error.problems.length
      ? error.problems
      : [{ field: error.field, message: error.message }];
    var byField = {};
    var order = [];
    problems.forEach(function (p) {
      var field = p.field || "";
      if (!(field in byField)) {
        byField[field] = [];
        order.push(field);
      }
      byField[field].push(p.message);
    });
    var unplaced = [];
    var first = null;
    order.forEach(function (field) {
      var message = byField[field].join(" ");
      var marked = field ? showFieldError(form, field, message) : null;
      if (marked) {
        first = first || marked;
      } else {
        unplaced.push(message);
      }
    });
    if (unplaced.length) {
      showGeneral(form, unplaced.join(" "));
    }
    if (first && typeof first.focus === "function") {
      first.focus();
    }
  }

  function thank(form) {
    var redirect = form.getAttribute("data-leadflow-redirect");
    if (redirect) {
      window.location.assign(redirect);
      return;
    }
    var thanks = find(form, "[data-leadflow-thanks]");
    if (thanks) {
      if (form.contains(thanks)) {
        form.reset();
      } else {
        form.style.display = "none";
      }
      thanks.hidden = false;
    } else if (form.parentNode) {
      thanks = note(form.getAttribute("data-leadflow-thanks-text") || THANKS, "status");
      form.replaceWith(thanks);
    } else {
      return;
    }
    thanks.setAttribute("tabindex", "-1");
    thanks.focus();
  }

  function attach(form) {
    if (form.hasAttribute("data-leadflow-ready")) {
      return;
    }
    form.setAttribute("data-leadflow-ready", "");
    // One key per form fill, kept until it succeeds: a retry or a second click is the same lead.
    var key = null;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      key = key || uuid();
      var sent = key;
      clear(form);
      form.setAttribute("aria-busy", "true");
      fetch(form.action, {
        method: "POST",
        mode: "cors",
        credentials: "omit",
        headers: { "content-type": "application/json", accept: "application/json", "idempotency-key": sent },
        body: JSON.stringify(fields(form))
      })
        .then(function (response) {
          return response.json().catch(function () { return null; }).then(function (body) {
            return { status: response.status, ok: response.ok, body: body };
          });
        })
        .then(function (answer) {
          form.removeAttribute("aria-busy");
          if (answer.ok) {
            if (key === sent) {
              key = null;
            }
            var leadId = answer.body && answer.body.lead_id;
            form.dispatchEvent(new CustomEvent("leadflow:submitted", { bubbles: true, detail: { lead_id: leadId } }));
            thank(form);
            return;
          }
          var error = answer.body && answer.body.error;
          if (answer.status === 409 && key === sent) {
            // The key went with other fields before (an answer was lost and the form changed
            // since): the next press sends these fields as a submission of their own.
            key = null;
          }
          if (answer.status === 422 && error) {
            showFieldErrors(form, error);
          } else {
            showGeneral(form, GENERAL);
          }
        }, function () {
          // A network failure, or this page's origin is not in allowed_origins: the browser
          // hides which, so the visitor gets the general message and can try again.
          form.removeAttribute("aria-busy");
          showGeneral(form, GENERAL);
        });
    });
  }

  function init() {
    document.querySelectorAll("form[data-leadflow]").forEach(attach);
  }

  // For forms a page adds later.
  window.Leadflow = { attach: attach };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
