// hubjobs portal behaviour that HTML alone cannot give. Served as a file (the
// CSP allows no inline script); everything works without it except the
// dialog, the copy buttons and local-time rendering, which degrade to UTC.
(function () {
  "use strict";

  // Times are rendered server-side in UTC; show them in the viewer's zone
  // and keep UTC on hover. data-format="short" (tables) drops the seconds
  // and the current year, "stamp" (audit rows) only the current year; data-rel adds "(in 6 hours)" / "(3 minutes ago)",
  // kept current by the ticker below.
  var fmt = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
  });
  var shortFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  var shortYearFmt = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  var stampFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  var stampYearFmt = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  var rtf = window.Intl && Intl.RelativeTimeFormat ? new Intl.RelativeTimeFormat(undefined, { numeric: "auto" }) : null;

  // relative says how far ms (a difference from now) is in one unit.
  function relative(ms) {
    var s = Math.round(ms / 1000), a = Math.abs(s);
    if (!rtf) return "";
    if (a < 45) return rtf.format(Math.round(s / 5) * 5, "second");
    if (a < 3600) return rtf.format(Math.round(s / 60), "minute");
    if (a < 48 * 3600) return rtf.format(Math.round(s / 3600), "hour");
    return rtf.format(Math.round(s / 86400), "day");
  }

  function relSpan(t) {
    var r = t.nextElementSibling;
    if (!r || !r.classList.contains("rel")) {
      r = document.createElement("span");
      r.className = "rel muted";
      t.after(r);
    }
    return r;
  }

  function localTimes(root) {
    var nodes = (root || document).querySelectorAll("time[datetime]");
    for (var i = 0; i < nodes.length; i++) {
      var t = nodes[i];
      if (t.dataset.local === "1") continue;
      var d = new Date(t.getAttribute("datetime"));
      if (isNaN(d.getTime())) continue;
      var utc = d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC").replace(/Z$/, " UTC");
      var thisYear = d.getFullYear() === new Date().getFullYear();
      if (t.dataset.format === "short" || t.dataset.format === "stamp") {
        var f = t.dataset.format === "short" ? (thisYear ? shortFmt : shortYearFmt) : (thisYear ? stampFmt : stampYearFmt);
        t.textContent = f.format(d);
        t.title = fmt.format(d) + " · " + utc;
      } else {
        t.textContent = fmt.format(d);
        t.title = utc;
      }
      t.dataset.local = "1";
    }
    tick(root);
  }

  // tick refreshes relative times and "updated N s ago" ages. An age is
  // counted from when this page received it, so the viewer's clock does not
  // need to agree with the server's.
  function tick(root) {
    var now = Date.now();
    var rels = (root || document).querySelectorAll("time[data-rel]");
    for (var i = 0; i < rels.length; i++) {
      var d = new Date(rels[i].getAttribute("datetime"));
      if (!isNaN(d.getTime())) relSpan(rels[i]).textContent = " (" + relative(d.getTime() - now) + ")";
    }
    var ages = (root || document).querySelectorAll("[data-age]");
    for (var j = 0; j < ages.length; j++) {
      var a = ages[j];
      if (!a.dataset.since) a.dataset.since = String(now - 1000 * Number(a.dataset.age || 0));
      var secs = Math.max(0, Math.round((now - Number(a.dataset.since)) / 1000));
      a.textContent = secs < 2 ? "just now" : relative(-secs * 1000);
    }
  }
  setInterval(function () { tick(); }, 5000);

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

  document.addEventListener("htmx:afterSettle", function (ev) {
    localTimes(ev.target);
    // After a cancel the dialog (and the focused button in it) is gone:
    // put keyboard focus on the outcome so it is read and Tab continues there.
    var r = document.getElementById("cancel-result");
    if (r && ev.target.contains && ev.target.contains(r)) r.focus();
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { localTimes(); });
  } else {
    localTimes();
  }
})();
