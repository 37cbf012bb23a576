// hubjobs portal behaviour that HTML alone cannot give. Served as a file (the
// CSP allows no inline script); everything works without it except the
// dialog, the copy buttons and local-time rendering, which degrade to UTC.
(function () {
  "use strict";

  // Times are rendered server-side in UTC; show them in the viewer's zone
  // and keep UTC on hover.
  var fmt = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
  });
  function localTimes(root) {
    var nodes = (root || document).querySelectorAll("time[datetime]");
    for (var i = 0; i < nodes.length; i++) {
      var t = nodes[i];
      if (t.dataset.local === "1") continue;
      var d = new Date(t.getAttribute("datetime"));
      if (isNaN(d.getTime())) continue;
      t.title = d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC").replace(/Z$/, " UTC");
      t.textContent = fmt.format(d);
      t.dataset.local = "1";
    }
  }

  function copy(text, button) {
    var done = function () {
      var old = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = old; }, 1500);
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(done, function () { window.prompt("Copy:", text); });
    } else {
      window.prompt("Copy:", text);
    }
  }

  // The "type the job id" field keeps its form's submit button disabled until
  // it matches; the server checks the same thing again.
  function syncConfirm(input) {
    var form = input.form;
    if (!form) return;
    var ok = input.value.trim() === input.dataset.mustEqual;
    var buttons = form.querySelectorAll("button[type=submit]");
    for (var i = 0; i < buttons.length; i++) buttons[i].disabled = !ok;
  }

  document.addEventListener("click", function (ev) {
    var el = ev.target.closest("[data-copy],[data-dialog-open],[data-dialog-close]");
    if (!el) return;
    if (el.hasAttribute("data-copy")) {
      var text = el.getAttribute("data-copy");
      if (el.dataset.copyKind === "link") text = new URL(text, window.location.href).href;
      copy(text, el);
    } else if (el.hasAttribute("data-dialog-open")) {
      var dlg = document.getElementById(el.getAttribute("data-dialog-open"));
      if (dlg && dlg.showModal) {
        dlg.showModal();
        var c = dlg.querySelector("[data-must-equal]");
        if (c) syncConfirm(c);
      }
    } else {
      var d = el.closest("dialog");
      if (d) d.close();
    }
  });

  document.addEventListener("input", function (ev) {
    if (ev.target.matches && ev.target.matches("[data-must-equal]")) syncConfirm(ev.target);
  });

  // A request sent from inside a dialog closes it when it fails, so the error
  // that htmx swaps into the alert region is visible, and focus moves there.
  document.addEventListener("htmx:afterRequest", function (ev) {
    var d = ev.target.closest && ev.target.closest("dialog");
    if (!ev.detail.successful && d && d.open) d.close();
    if (!ev.detail.successful) {
      var a = document.getElementById("alerts");
      if (a) a.focus();
    }
  });
  // Clear an earlier error once the next request succeeds.
  document.addEventListener("htmx:beforeSwap", function (ev) {
    if (ev.detail.successful && !ev.detail.isError) {
      var a = document.getElementById("alerts");
      if (a && ev.detail.target !== a && ev.detail.requestConfig && ev.detail.requestConfig.verb !== "get") a.replaceChildren();
    }
  });

  document.addEventListener("htmx:afterSettle", function (ev) { localTimes(ev.target); });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { localTimes(); });
  } else {
    localTimes();
  }
})();
