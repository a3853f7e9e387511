// The console's only script: live progress of a running sync (SSE) and copy buttons.
// Every page works without it; it only adds to what the server rendered.
(function () {
  "use strict";

  // A run page's first ask waits a moment: most runs end within it, and an admin who moves on
  // at once leaves no request behind.
  var FIRST_ASK_MS = 1000;

  // A running run's page follows it: outcome and counts change in place when it ends (no
  // reload). Each status response ends at once and EventSource asks again (`retry`), so no
  // request is open when the admin moves on; the source is closed between responses only.
  function liveRun() {
    var facts = document.querySelector("[data-run-status]");
    if (!facts || facts.getAttribute("data-run-status") !== "running" || !window.EventSource) return;
    setTimeout(function () { follow(facts); }, FIRST_ASK_MS);
  }

  function follow(facts) {
    var live = document.querySelector("[data-testid=run-live]");
    var outcome = document.querySelector("[data-testid=run-outcome] .outcome");
    var counts = document.querySelector("[data-testid=run-counts]");
    var source = new EventSource("/runs/" + facts.getAttribute("data-run-id") + "/events");
    var finished = false;
    source.onerror = function () { if (finished) source.close(); };  // the response has ended
    source.addEventListener("status", function (ev) {
      var st = JSON.parse(ev.data);
      if (counts) counts.textContent = st.summary;
      if (live) {
        live.hidden = false;
        live.textContent = st.done ? "Finished: " + st.outcome + ". Reload the page to see its changes." : "Running…";
      }
      if (st.done) {
        finished = true;
        if (outcome) {
          outcome.textContent = st.outcome;
          outcome.className = "outcome outcome-" + st.outcome;
        }
        facts.setAttribute("data-run-status", st.outcome);
      }
    });
    source.addEventListener("gone", function () { finished = true; });
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
