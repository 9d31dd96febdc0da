// Sidekick console: progressive enhancement. Every page works without
// this script; with it, the queue and a conversation update while open
// (server-sent events from /console/live), and the keyboard works:
// press ? for the list. Loaded from the console itself (the content
// security policy allows no other script, and no inline script at all).
(function () {
  "use strict";
  var body = document.body;

  // Live updates: on each change the stream reports, fetch this page again
  // and swap in its parts marked data-live, leaving forms being typed in
  // alone. Changes arriving during a fetch cause one more fetch.
  var fetching = false, again = false;
  function refresh() {
    if (fetching) { again = true; return; }
    fetching = true;
    fetch(location.href, {credentials: "same-origin"}).then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.text();
    }).then(function (html) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      document.querySelectorAll("[data-live]").forEach(function (el) {
        var fresh = el.id && doc.getElementById(el.id);
        if (fresh) { el.replaceWith(document.importNode(fresh, true)); }
      });
      body.setAttribute("data-updates", String(Number(body.getAttribute("data-updates") || 0) + 1));
      select(selectedID());
    }).catch(function () {
      // The next change, or a reload, tries again.
    }).finally(function () {
      fetching = false;
      if (again) { again = false; refresh(); }
    });
  }
  var liveURL = body.getAttribute("data-live-url");
  if (liveURL && window.EventSource) {
    var es = new EventSource(liveURL);
    es.addEventListener("change", refresh);
    es.addEventListener("open", function () { body.setAttribute("data-live-state", "open"); });
    es.addEventListener("error", function () { body.setAttribute("data-live-state", "retrying"); });
  }

  // Keyboard shortcuts.
  var selected = "";
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("#queue tbody tr[data-id]")); }
  function selectedID() { return selected; }
  function select(id) {
    selected = "";
    rows().forEach(function (tr) {
      var on = tr.getAttribute("data-id") === id;
      tr.classList.toggle("selected", on);
      if (on) { selected = id; }
    });
  }
  function move(step) {
    var rs = rows();
    if (rs.length === 0) { return; }
    var i = rs.findIndex(function (tr) { return tr.getAttribute("data-id") === selected; });
    i = i < 0 ? (step > 0 ? 0 : rs.length - 1) : Math.min(rs.length - 1, Math.max(0, i + step));
    select(rs[i].getAttribute("data-id"));
    rs[i].scrollIntoView({block: "nearest"});
  }
  function open() {
    var tr = document.querySelector("#queue tbody tr.selected a");
    if (tr) { tr.click(); }
  }
  function focus(sel) {
    var el = document.querySelector(sel);
    if (!el) { return false; }
    el.focus();
    if (el.select && el.tagName === "INPUT") { el.select(); }
    return true;
  }
  var help = document.getElementById("help");
  function toggleHelp(show) {
    if (!help) { return; }
    help.hidden = show === undefined ? !help.hidden : !show;
  }
  var hint = document.getElementById("keys-hint");
  if (hint) { hint.hidden = false; }
  if (location.hash === "#search") { focus("#q"); }

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) { return; }
    var t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) {
      if (e.key === "Escape") { t.blur(); }
      return;
    }
    var done = true;
    switch (e.key) {
    case "j": move(1); break;
    case "k": move(-1); break;
    case "o": case "Enter": open(); break;
    case "r": done = focus("#reply-form textarea"); break;
    case "n": done = focus("#note-form textarea"); break;
    case "a": done = focus("#assign-form input[name=assignee]"); break;
    case "e":
      var close = document.getElementById("close-form");
      if (close) { close.requestSubmit(); } else { done = false; }
      break;
    case "/":
      if (!focus("#q")) { location.href = body.getAttribute("data-base") + "/#search"; }
      break;
    case "?": toggleHelp(); break;
    case "Escape": toggleHelp(false); break;
    default: done = false;
    }
    if (done) { e.preventDefault(); }
  });
})();
