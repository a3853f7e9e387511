// The console's only script: live progress of a running sync (SSE) and copy buttons.
// Every page works without it; it only adds to what the server rendered.
(function () {
  "use strict";

  function liveRun() {
    var facts = document.querySelector("[data-run-status]");
    if (!facts || facts.getAttribute("data-run-status") !== "running" || !window.EventSource) return;
    var live = document.querySelector("[data-testid=run-live]");
    var source = new EventSource("/runs/" + facts.getAttribute("data-run-id") + "/events");
    source.addEventListener("status", function (ev) {
      var st = JSON.parse(ev.data);
      if (live) {
        live.hidden = false;
        live.textContent = st.done ? "Finished: " + st.outcome + ". Reloading…" : "Running…";
      }
      if (st.done) {
        source.close();
        window.location.reload();
      }
    });
    source.addEventListener("gone", function () { source.close(); });
    source.onerror = function () { source.close(); };
  }

  function copyButtons() {
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        var target = document.getElementById(button.getAttribute("data-copy"));
        if (!target) return;
        var text = target.textContent;
        var done = function () {
          button.textContent = "Copied";
          setTimeout(function () { button.textContent = "Copy"; }, 2000);
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(done, function () { select(target); });
        } else {
          select(target);
          try { if (document.execCommand("copy")) done(); } catch (e) { /* selected for Ctrl+C */ }
        }
      });
    });
  }

  function select(el) {
    var range = document.createRange();
    range.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  document.addEventListener("DOMContentLoaded", function () {
    liveRun();
    copyButtons();
  });
})();
