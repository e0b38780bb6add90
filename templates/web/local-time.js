// Dates in the viewer's own format and time zone. The server writes every
// moment as <time datetime="2026-12-08T10:00:00Z">8 Dec 2026, 10:00 UTC</time>;
// this rewrites the words with the browser's Intl (the UTC words stay as the
// tooltip, and without script they are what the page shows).
(function () {
  if (!window.Intl || !Intl.DateTimeFormat) return;
  var format = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  var times = document.querySelectorAll('time[datetime]');
  for (var i = 0; i < times.length; i++) {
    var t = times[i];
    var at = new Date(t.getAttribute('datetime'));
    if (isNaN(at.getTime())) continue;
    t.title = t.textContent;
    t.textContent = format.format(at);
  }
})();
