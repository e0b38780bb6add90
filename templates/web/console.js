// The console's small behaviours, none needed to use it (every form works
// without script). Canned replies: picking one from the list above the
// reply box puts its text (filled for this ticket) where the cursor is,
// and a macro's changes are noted to go with the reply.
(function () {
  "use strict";
  var pick = document.getElementById("canned-pick");
  var area = document.getElementById("reply");
  if (!pick || !area) return;
  var macro = document.getElementById("reply-macro");
  var note = document.getElementById("macro-note");
  var changes = document.getElementById("macro-changes");
  function option(title) {
    var all = document.querySelectorAll("#canned-list option");
    for (var i = 0; i < all.length; i++) {
      if (all[i].value === title) return all[i];
    }
    return null;
  }
  function insert() {
    var o = option(pick.value);
    if (!o) return false;
    var text = o.getAttribute("data-text") || "";
    var start = area.selectionStart || 0, end = area.selectionEnd || 0;
    area.value = area.value.slice(0, start) + text + area.value.slice(end);
    area.selectionStart = area.selectionEnd = start + text.length;
    if (o.getAttribute("data-changes")) {
      macro.value = o.getAttribute("data-id");
      changes.textContent = o.getAttribute("data-changes");
      note.hidden = false;
    }
    pick.value = "";
    area.focus();
    return true;
  }
  // A choice from the list (not a title typed letter by letter).
  pick.addEventListener("input", function (e) {
    if (!e.inputType || e.inputType === "insertReplacementText") insert();
  });
  pick.addEventListener("keydown", function (e) {
    if (e.key === "Enter") {
      e.preventDefault();
      insert();
    }
  });
})();

// Live updates (server-sent events from /api/v1/events). The queue shows
// new and changed tickets as they happen (unless tickets are ticked for a
// bulk change: then it says so and waits for a reload). A ticket's page
// shows new messages and field changes in place, tells which other agents
// are viewing it or typing a reply, and tells them the same of this one.
// A reply written over a message that arrived meanwhile is still stopped
// by the server, which asks before sending.
(function () {
  "use strict";
  if (!window.EventSource || !window.fetch) return;
  var grid = document.querySelector("[data-live-ticket]");
  var queue = document.getElementById("queue-results");
  var news = document.getElementById("live-news");
  if (!grid && !queue) return;
  var csrfInput = document.querySelector('input[name="csrf"]');
  var csrf = csrfInput ? csrfInput.value : "";
  var ticket = grid ? grid.getAttribute("data-live-ticket") : null;
  var source = new EventSource("/api/v1/events" + (ticket ? "?ticket=" + encodeURIComponent(ticket) : ""));
  var waiting = null;
  function soon(fn) {
    if (waiting) return;
    waiting = setTimeout(function () { waiting = null; fn(); }, 250);
  }
  // The page as a GET of its own address (a page answering a form has the
  // form's address).
  var address = ticket ? "/console/tickets/" + encodeURIComponent(ticket) : location.pathname + location.search;
  function page() {
    return fetch(address, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (t) { return new DOMParser().parseFromString(t, "text/html"); });
  }
  function swap(doc, id) {
    var now = document.getElementById(id), fresh = doc.getElementById(id);
    if (now && fresh) now.innerHTML = fresh.innerHTML;
  }
  function say(text) {
    if (!news) return;
    news.textContent = text;
    news.hidden = false;
  }

  if (queue) {
    if (location.pathname !== "/console") return;
    source.onmessage = function (e) {
      var ev = JSON.parse(e.data);
      if (ev.type === "presence") return;
      soon(function () {
        if (queue.querySelector("input:checked")) {
          say("Tickets changed since this page loaded: reload to see them.");
          return;
        }
        page().then(function (doc) {
          swap(doc, "queue-results");
          swap(doc, "queue-h");
          var badges = document.querySelector(".badges"), fresh = doc.querySelector(".badges");
          if (badges && fresh) badges.innerHTML = fresh.innerHTML;
        }).catch(function () {});
      });
    };
    return;
  }

  var me = grid.getAttribute("data-me");
  var thread = document.getElementById("thread");
  var presence = document.getElementById("presence");
  var people = {};
  function shown() {
    var ids = {};
    thread.querySelectorAll("li[id]").forEach(function (li) { ids[li.id] = true; });
    return ids;
  }
  function refresh(fromOthers) {
    var before = shown();
    page().then(function (doc) {
      swap(doc, "thread");
      swap(doc, "ticket-meta");
      swap(doc, "ticket-sla");
      var added = [];
      thread.querySelectorAll("li[id]").forEach(function (li) {
        if (!before[li.id]) { li.classList.add("arrived"); if (!li.classList.contains("msg-system")) added.push(li); }
      });
      if (added.length && fromOthers) {
        var who = added[added.length - 1].querySelector(".who");
        say("New message" + (who ? " from " + who.textContent.split(" · ")[0].trim() : "") +
            " while you were here. Read it above; if you send a reply, you will be asked first.");
      }
    }).catch(function () {});
  }
  var othersWrote = false;
  source.onmessage = function (e) {
    var ev = JSON.parse(e.data);
    if (ev.type === "presence") {
      if (String(ev.user) === me) return;
      if (ev.state === "left") delete people[ev.user];
      else people[ev.user] = { name: ev.name, state: ev.state, at: Date.now() };
      draw();
      return;
    }
    if (ev.type === "message" && String(ev.by) !== me && ev.kind !== "system") othersWrote = true;
    soon(function () { var o = othersWrote; othersWrote = false; refresh(o); });
  };
  function draw() {
    var now = Date.now(), names = [];
    Object.keys(people).forEach(function (k) {
      var p = people[k];
      if (now - p.at > 40000) { delete people[k]; return; }
      names.push(p.name + (p.state === "typing" ? " (typing a reply…)" : ""));
    });
    presence.textContent = names.length ? "Also on this ticket: " + names.join(", ") : "";
    presence.hidden = names.length === 0;
  }
  setInterval(draw, 5000);

  // This agent's own presence: viewing, typing (while keys are pressed in
  // the reply box), left (on leaving the page).
  var path = "/console/tickets/" + encodeURIComponent(ticket) + "/presence";
  var typedAt = 0, saidTyping = 0;
  function tell(state) {
    var body = new URLSearchParams({ csrf: csrf, state: state });
    fetch(path, { method: "POST", body: body, credentials: "same-origin", keepalive: state === "left" }).catch(function () {});
  }
  tell("viewing");
  setInterval(function () { tell(Date.now() - typedAt < 10000 ? "typing" : "viewing"); }, 15000);
  var reply = document.getElementById("reply");
  if (reply) {
    reply.addEventListener("input", function () {
      typedAt = Date.now();
      if (typedAt - saidTyping > 5000) { saidTyping = typedAt; tell("typing"); }
    });
  }
  window.addEventListener("pagehide", function () {
    var body = new URLSearchParams({ csrf: csrf, state: "left" });
    if (navigator.sendBeacon) navigator.sendBeacon(path, body); else tell("left");
  });
})();

// Keys: j/k move through the queue, o (or Enter) opens, r and n go to the
// reply and the note, / to the search, ? lists the keys, Escape closes the
// list. Nothing fires while typing in a field, or with Ctrl, Alt or Meta.
(function () {
  "use strict";
  var KEYS = [
    ["j / k", "next / previous ticket in the queue"],
    ["o or Enter", "open the chosen ticket"],
    ["r", "write a reply (on a ticket)"],
    ["n", "write an internal note (on a ticket)"],
    ["/", "search"],
    ["?", "show or hide these keys"],
  ];
  var help = null;
  function toggleHelp() {
    if (help) { help.remove(); help = null; return; }
    help = document.createElement("div");
    help.className = "keys-help notice";
    help.setAttribute("role", "dialog");
    help.setAttribute("aria-label", "Keyboard shortcuts");
    var h = document.createElement("h2");
    h.textContent = "Keyboard shortcuts";
    help.appendChild(h);
    var dl = document.createElement("dl");
    KEYS.forEach(function (k) {
      var dt = document.createElement("dt"), dd = document.createElement("dd"), kbd = document.createElement("kbd");
      kbd.textContent = k[0];
      dt.appendChild(kbd);
      dd.textContent = k[1];
      dl.appendChild(dt);
      dl.appendChild(dd);
    });
    help.appendChild(dl);
    var main = document.getElementById("main");
    main.insertBefore(help, main.firstChild);
  }
  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("#queue-results tbody tr"));
  }
  function current() {
    return document.querySelector("#queue-results tbody tr.kb-current");
  }
  function move(by) {
    var all = rows();
    if (!all.length) return;
    var at = all.indexOf(current());
    var next = at < 0 ? (by > 0 ? 0 : all.length - 1) : Math.max(0, Math.min(all.length - 1, at + by));
    all.forEach(function (r) { r.classList.remove("kb-current"); r.removeAttribute("aria-current"); });
    all[next].classList.add("kb-current");
    all[next].setAttribute("aria-current", "true");
    var link = all[next].querySelector("td.subject a") || all[next].querySelector("a");
    if (link) link.focus();
  }
  function focusField(id) {
    var f = document.getElementById(id);
    if (!f) return false;
    f.focus();
    f.scrollIntoView({ block: "center" });
    return true;
  }
  if (location.hash === "#search") {
    var q = document.querySelector('input[name="q"]');
    if (q) q.focus();
  }
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.altKey || e.metaKey || e.defaultPrevented) return;
    var t = e.target;
    var tag = t && t.tagName ? t.tagName.toLowerCase() : "";
    if (tag === "input" || tag === "textarea" || tag === "select" || (t && t.isContentEditable)) return;
    // Enter on a link or a button does what it always does.
    if (e.key === "Enter" && (tag === "a" || tag === "button" || tag === "summary")) return;
    var done = true;
    switch (e.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "o":
      case "Enter": {
        var row = current();
        var link = row && (row.querySelector("td.subject a") || row.querySelector("a"));
        if (link) location.href = link.href; else done = false;
        break;
      }
      case "r": done = focusField("reply"); break;
      case "n": done = focusField("note"); break;
      case "/": {
        var search = document.querySelector('input[name="q"]');
        if (search) search.focus(); else location.href = "/console#search";
        break;
      }
      case "?": toggleHelp(); break;
      case "Escape": if (help) toggleHelp(); else done = false; break;
      default: done = false;
    }
    if (done) e.preventDefault();
  });
})();

// Reports: days count in the reader's own time zone unless the link names
// one (without script they count in UTC, as the page says).
(function () {
  "use strict";
  var tz = document.querySelector("input[data-local-offset]");
  if (!tz || /[?&]tz=/.test(location.search)) return;
  var minutes = -new Date().getTimezoneOffset();
  var m = Math.abs(minutes);
  var zone = (minutes < 0 ? "-" : "+") + String(Math.floor(m / 60)).padStart(2, "0") + ":" +
    String(m % 60).padStart(2, "0");
  if (zone === "+00:00" || zone === tz.value) return;
  var q = new URLSearchParams(location.search);
  q.set("tz", zone);
  location.replace(location.pathname + "?" + q.toString());
})();
