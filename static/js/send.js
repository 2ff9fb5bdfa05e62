/* NeoMesh send form: the red LIVE banner as soon as a live mailbox is chosen, and upload progress.
   Without this file the form posts as a plain form and the server shows the banner after an error. */
(function () {
  "use strict";

  function setUpLiveBanner(root) {
    var select = root.querySelector("select[data-live-mailboxes]");
    var banner = root.querySelector("[data-live-banner]");
    if (!select || !banner) return;
    var live = (select.getAttribute("data-live-mailboxes") || "").split(" ").filter(Boolean);
    var update = function () { banner.hidden = live.indexOf(select.value) === -1; };
    select.addEventListener("change", update);
    update();
  }

  function megabytes(bytes) {
    return (bytes / 1048576).toFixed(1) + " MB";
  }

  // A form that failed validation comes back as a page: show it in place, keeping the chosen file
  // (the browser keeps it in this input element, which a page load would lose).
  function showReturnedForm(html, fileInput) {
    var page = new DOMParser().parseFromString(html, "text/html");
    var main = document.getElementById("main");
    var returned = page.getElementById("main");
    if (!main || !returned) {
      document.body.textContent = "The send could not be completed. Reload the page and try again.";
      return;
    }
    main.innerHTML = returned.innerHTML;
    var placeholder = main.querySelector("input[type=file][name=file]");
    if (placeholder && fileInput && fileInput.files && fileInput.files.length) {
      placeholder.replaceWith(fileInput);
      var note = main.querySelector("[data-chosen-file]");
      if (note) note.textContent = "Your file " + fileInput.files[0].name + " (" + megabytes(fileInput.files[0].size) + ") is still chosen.";
    }
    enhance(main);
    if (window.NeoMesh && window.NeoMesh.enhance) window.NeoMesh.enhance();
  }

  function setUpUploadProgress(root) {
    var form = root.querySelector("form[data-upload-progress]");
    if (!form || !window.XMLHttpRequest || !window.FormData) return;
    var status = form.querySelector("[data-upload-status]");
    var bar = status && status.querySelector("progress");
    var text = status && status.querySelector("[data-upload-text]");
    var button = form.querySelector("button[type=submit]");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var data = new FormData(form);
      var fileInput = form.querySelector("input[type=file][name=file]");
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.getAttribute("action") || window.location.href);
      xhr.setRequestHeader("X-Upload-Progress", "1");
      if (status) status.hidden = false;
      if (button) button.disabled = true;
      xhr.upload.addEventListener("progress", function (e) {
        if (!e.lengthComputable || !bar) return;
        var percent = Math.floor((e.loaded / e.total) * 100);
        bar.value = percent;
        if (text) text.textContent = "Uploaded " + megabytes(e.loaded) + " of " + megabytes(e.total) + " (" + percent + "%)";
      });
      xhr.upload.addEventListener("load", function () {
        if (text) text.textContent = "Uploaded: NeoMesh is storing the file and queuing the send…";
      });
      xhr.addEventListener("load", function () {
        var type = xhr.getResponseHeader("Content-Type") || "";
        if (xhr.status === 200 && type.indexOf("application/json") === 0) {
          window.location.assign(JSON.parse(xhr.responseText).location);
        } else {
          showReturnedForm(xhr.responseText, fileInput);
        }
      });
      xhr.addEventListener("error", function () {
        if (button) button.disabled = false;
        if (text) text.textContent = "The upload failed (the connection dropped): nothing was sent. Try again.";
      });
      xhr.send(data);
    });
  }

  function enhance(root) {
    setUpLiveBanner(root);
    setUpUploadProgress(root);
    var summary = root.querySelector(".error-summary");
    if (summary) summary.focus();
  }

  document.addEventListener("DOMContentLoaded", function () { enhance(document); });
})();
