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
