/* NeoMesh: small progressive enhancements. Every page works without this file. */
(function () {
  "use strict";

  // Pages with [data-refresh="<seconds>"] reload until their work finishes (a task result, a send's
  // progress). Refreshing pauses while someone is typing in a form, and can be stopped.
  function setUpRefresh() {
    var marker = document.querySelector("[data-refresh]");
    if (!marker) return;
    var seconds = parseFloat(marker.getAttribute("data-refresh")) || 2;
    var stopped = false;
    var stop = document.querySelector("[data-refresh-stop]");
    if (stop) {
      stop.hidden = false;
      stop.addEventListener("click", function () {
        stopped = true;
        stop.hidden = true;
        var note = document.querySelector("[data-refresh-note]");
        if (note) note.textContent = "Automatic refresh stopped. Reload the page to see the latest state.";
      });
    }
    function tick() {
      if (stopped) return;
      var active = document.activeElement;
      var typing = active && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName);
      if (typing) {
        window.setTimeout(tick, seconds * 1000);
      } else {
        window.location.reload();
      }
    }
    window.setTimeout(tick, seconds * 1000);
  }

  // Live parts: elements with an id and data-live-url are fetched again every data-live-every
  // seconds (one request per URL, same origin) and their contents replaced in place: no reload, so
  // nothing a person is reading or typing elsewhere on the page moves. A part holding the focus is
  // left alone until the focus leaves it; nothing is fetched while the tab is hidden.
  function setUpLiveParts() {
    var parts = Array.prototype.slice.call(document.querySelectorAll("[id][data-live-url]"));
    if (!parts.length || !window.fetch || !window.DOMParser) return;
    var byUrl = {};
    parts.forEach(function (part) {
      var url = part.getAttribute("data-live-url");
      (byUrl[url] = byUrl[url] || []).push(part);
    });
    Object.keys(byUrl).forEach(function (url) {
      var group = byUrl[url];
      var seconds = parseFloat(group[0].getAttribute("data-live-every")) || 15;
      function later() { window.setTimeout(tick, seconds * 1000); }
      function replace(html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        group.forEach(function (part) {
          var update = fresh.getElementById(part.id);
          if (!update || part.contains(document.activeElement)) return;
          if (update.innerHTML !== part.innerHTML) part.innerHTML = update.innerHTML;
        });
      }
      function tick() {
        if (document.hidden) { later(); return; }
        window.fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" }, redirect: "error" })
          .then(function (response) { return response.ok ? response.text() : null; })
          .then(function (html) { if (html !== null) replace(html); })
          .catch(function () { /* offline or signed out: try again later */ })
          .then(later);
      }
      later();
    });
  }

  // A dangerous-change section (e.g. disabling a live mailbox) shows only when the change is made.
  function setUpConditionalSections() {
    document.querySelectorAll("[data-show-when-unchecked]").forEach(function (section) {
      var box = document.getElementById(section.getAttribute("data-show-when-unchecked"));
      if (!box) return;
      var update = function () { section.hidden = box.checked && !section.querySelector(".errorlist"); };
      box.addEventListener("change", update);
      update();
    });
  }

  // The send form: only the workflows registered on the chosen mailbox are offered.
  function setUpWorkflowFilter() {
    var select = document.querySelector("select[data-workflows-for]");
    if (!select) return;
    var mailbox = document.getElementById(select.getAttribute("data-workflows-for"));
    if (!mailbox) return;
    var update = function () {
      // The mailbox select's values are MESH mailbox ids, the optgroups' labels too.
      var chosen = mailbox.value;
      select.querySelectorAll("optgroup").forEach(function (group) {
        var match = !chosen || group.label === chosen;
        group.hidden = !match;
        group.disabled = !match;
      });
      var current = select.options[select.selectedIndex];
      if (current && current.parentElement.disabled) select.value = "";
    };
    mailbox.addEventListener("change", update);
    update();
  }

  // Buttons with data-confirm ask before submitting their form.
  function setUpConfirmations() {
    document.querySelectorAll("button[data-confirm]").forEach(function (button) {
      button.addEventListener("click", function (event) {
        if (!window.confirm(button.getAttribute("data-confirm"))) event.preventDefault();
      });
    });
  }

  // After a failed submit, move focus to the error summary so screen readers announce it.
  function focusErrorSummary() {
    var summary = document.querySelector(".error-summary");
    if (summary) summary.focus();
  }

  // Filter panels are <details>: collapsed on a phone, opened here on a wider screen.
  function openFiltersWhenWide() {
    if (!window.matchMedia("(min-width: 50rem)").matches) return;
    document.querySelectorAll("details[data-open-when-wide]").forEach(function (panel) {
      panel.open = true;
    });
  }

  // Pages that replace part of themselves (the send form after an error) set these up again.
  window.NeoMesh = { enhance: function () { setUpWorkflowFilter(); setUpConditionalSections(); } };

  document.addEventListener("DOMContentLoaded", function () {
    openFiltersWhenWide();
    focusErrorSummary();
    setUpRefresh();
    setUpLiveParts();
    setUpConditionalSections();
    setUpWorkflowFilter();
    setUpConfirmations();
  });
})();
