// The console's one script: what htmx leaves to the page.
//
// - htmx 2 swaps no 4xx/5xx answer: the API's error ({"error": {"code", "message"}})
//   is shown beside the form that was sent (its [data-error] element), or on top.
// - a metadata field must hold a JSON object before a form is sent;
// - [data-copy] buttons copy the text of the element they name (a key shown once);
// - after a change (an answer marked data-changed), every table marked data-reloads
//   reloads from the page's current URL (paging and filters are pushed there). It is
//   told by the answer's swap into its target, which stays in the page: an event sent
//   to the element that asked (HX-Trigger) is lost when that element was inside a table
//   being replaced at that moment.
"use strict";

(function () {
  function errorPlace(elt) {
    const form = elt && elt.closest ? elt.closest("form") : null;
    return (form && form.querySelector("[data-error]")) || document.getElementById("console-error");
  }

  function show(place, message) {
    place.textContent = message;
    place.hidden = false;
  }

  function messageOf(xhr) {
    try {
      const body = JSON.parse(xhr.responseText);
      if (body && body.error && body.error.message) {
        return body.error.message;
      }
    } catch (_ignored) {
      // not the API's error shape: fall through
    }
    return xhr.status + " " + (xhr.statusText || "error");
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    const place = errorPlace(event.detail.elt);
    place.hidden = true;
    place.textContent = "";
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    const xhr = event.detail.xhr;
    if (xhr.status >= 400) {
      event.detail.shouldSwap = false;
      event.detail.isError = false; // handled here: no console noise
      show(errorPlace(event.detail.requestConfig.elt), messageOf(xhr));
    }
  });

  document.addEventListener("htmx:sendError", function (event) {
    show(errorPlace(event.detail.elt), document.body.dataset.networkError || "network error");
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    const elt = event.detail.elt;
    if (event.detail.successful && elt.matches && elt.matches("form[data-reset]")) {
      elt.reset();
    }
  });

  // Checked as it is typed: a field the browser finds invalid stops the submit before
  // htmx sees it, so the check cannot wait for htmx's own validation event.
  function checkJson(field) {
    let problem = "";
    const text = field.value.trim();
    if (text) {
      try {
        const value = JSON.parse(text);
        if (value === null || typeof value !== "object" || Array.isArray(value)) {
          problem = field.dataset.invalidJson;
        }
      } catch (_ignored) {
        problem = field.dataset.invalidJson;
      }
    }
    field.setCustomValidity(problem || "");
  }

  ["input", "htmx:validation:validate"].forEach(function (name) {
    document.addEventListener(name, function (event) {
      if (event.target.matches && event.target.matches("textarea[data-json-object]")) {
        checkJson(event.target);
      }
    });
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    const target = event.detail.target;
    if (!target.querySelector || !target.querySelector("[data-changed]")) {
      return;
    }
    document.querySelectorAll("[data-reloads]").forEach(function (table) {
      const selector = "#" + table.id;
      htmx.ajax("GET", window.location.pathname + window.location.search, {
        source: table, target: selector, select: selector, swap: "outerHTML",
      });
    });
  });

  document.addEventListener("htmx:validation:halted", function (event) {
    if (event.target.reportValidity) {
      event.target.reportValidity();
    }
  });

  document.addEventListener("click", function (event) {
    const button = event.target.closest ? event.target.closest("[data-copy]") : null;
    if (!button) {
      return;
    }
    const source = document.getElementById(button.dataset.copy);
    const text = source ? source.textContent : "";
    const done = function () {
      button.textContent = button.dataset.copied || "Copied";
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done);
    } else {
      // plain http on a plant network: no clipboard API; select the key instead
      const range = document.createRange();
      range.selectNodeContents(source);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      document.execCommand("copy");
      done();
    }
  });
})();
