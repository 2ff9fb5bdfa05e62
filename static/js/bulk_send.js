// Bulk send: posts the chosen files one at a time (each its own message) and shows each upload's
// progress and outcome. Without this script the form posts every file at once and the page lists
// the outcomes. Same-origin only; no inline code (the content security policy forbids it).
(function () {
  "use strict";
  var form = document.querySelector("form[data-bulk-send]");
  if (!form || !window.FormData || !window.XMLHttpRequest) return;
  var input = form.querySelector("input[type=file][name=files]");
  var panel = document.getElementById("bulk-panel");
  var summary = document.getElementById("bulk-summary");
  var overall = document.getElementById("bulk-overall");
  var list = document.getElementById("bulk-files");
  var button = form.querySelector("button[type=submit]");

  function row(file) {
    var item = document.createElement("li");
    var name = document.createElement("span");
    name.className = "bulk-name";
    name.textContent = file.name;
    var bar = document.createElement("progress");
    bar.max = file.size || 1;
    bar.value = 0;
    bar.setAttribute("aria-label", "Upload of " + file.name);
    var status = document.createElement("span");
    status.className = "bulk-status";
    status.textContent = "Waiting";
    item.append(name, " ", bar, " ", status);
    list.appendChild(item);
    return { bar: bar, status: status, size: file.size || 1 };
  }

  function outcome(entry, result) {
    entry.status.textContent = "";
    if (result.ok) {
      var link = document.createElement("a");
      link.href = result.url;
      link.textContent = result.text;
      entry.status.appendChild(link);
    } else {
      var text = document.createElement("span");
      text.className = "error-text";
      text.textContent = result.text;
      entry.status.appendChild(text);
    }
  }

  form.addEventListener("submit", function (event) {
    var files = Array.prototype.slice.call(input.files || []);
    if (!files.length) return; // the server says which fields are missing
    event.preventDefault();
    button.disabled = true;
    panel.hidden = false;
    list.textContent = "";
    var rows = files.map(row);
    var total = rows.reduce(function (sum, r) { return sum + r.size; }, 0);
    var finished = 0;
    var queued = 0;
    var refused = 0;
    overall.max = total;
    overall.value = 0;
    summary.textContent = "Uploading " + files.length + " file" + (files.length === 1 ? "" : "s") + "…";

    function done() {
      button.disabled = false;
      summary.textContent = queued + " of " + files.length + " queued for sending" +
        (refused ? "; " + refused + " refused (see why below)." : ".");
    }

    function send(index) {
      if (index >= files.length) return done();
      var entry = rows[index];
      var data = new FormData(form);
      data.delete("files");
      data.append("files", files[index]);
      var request = new XMLHttpRequest();
      request.open("POST", form.getAttribute("action") || window.location.pathname);
      request.setRequestHeader("Accept", "application/json");
      entry.status.textContent = "Uploading";
      request.upload.addEventListener("progress", function (e) {
        if (!e.lengthComputable) return;
        var share = Math.min(entry.size, Math.round((e.loaded / e.total) * entry.size));
        entry.bar.value = share;
        overall.value = finished + share;
      });
      request.addEventListener("load", function () {
        var answer = null;
        try { answer = JSON.parse(request.responseText); } catch (err) { answer = null; }
        finished += entry.size;
        entry.bar.value = entry.size;
        overall.value = finished;
        if (answer && answer.results && answer.results.length) {
          outcome(entry, answer.results[0]);
          if (answer.results[0].ok) { queued += 1; } else { refused += 1; }
          return send(index + 1);
        }
        if (answer && answer.errors) { // the form itself is wrong: nothing more is sent
          button.disabled = false;
          summary.textContent = "Nothing more was sent: " + answer.errors.map(function (e) {
            return (e.label ? e.label + ": " : "") + e.message;
          }).join(" ");
          rows.slice(index).forEach(function (r) { r.status.textContent = "Not sent"; });
          return;
        }
        outcome(entry, { ok: false, text: "The server did not answer as expected (HTTP " + request.status + ")." });
        refused += 1;
        send(index + 1);
      });
      request.addEventListener("error", function () {
        finished += entry.size;
        outcome(entry, { ok: false, text: "The upload was interrupted: send this file again." });
        refused += 1;
        send(index + 1);
      });
      request.send(data);
    }
    send(0);
  });
})();
